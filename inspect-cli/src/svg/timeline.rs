//! The timeline: the generations' sizes stacked over a workload's operations, and every
//! collection's pause as a bar against a second axis.
//!
//! ```text
//!   objects │        ▁▂▃▅ gen 0 (light)       │ pause
//!           │   ▂▃▅▇█████ gen 1               │
//!           │███████████ gen 2 (bottom)  ▌ ▌  ▌│  bars: one per collection, coloured by
//!           └──────────────────────────────────┘        the generation collected
//!                        operations
//! ```

use serde::Serialize;

use super::{grouped, nice_step, num, Svg};
use crate::output::Nanos;

const WIDTH: f64 = 1100.0;
const HEIGHT: f64 = 580.0;
const LEFT: f64 = 96.0;
const RIGHT: f64 = WIDTH - 104.0;
const TOP: f64 = 104.0;
const BOTTOM: f64 = HEIGHT - 78.0;
/// The most points a band's outline gets (samples beyond are thinned evenly).
const MAX_POINTS: usize = 1_500;

/// The areas' colours, generation 0 to 2.
const AREA: [&str; 3] = ["#fcd56a", "#8fd19e", "#9cc0f9"];
/// The pause bars' colours, by the generation collected.
const BAR: [&str; 3] = ["#b06000", "#137333", "#a50e0e"];

/// The generations' sizes after an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// Operations done.
    pub op: u64,
    /// Objects tracked in generations 0, 1 and 2.
    pub generations: [u64; 3],
}

/// One collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Pause {
    /// Operations done when it ran.
    pub op: u64,
    /// The generation collected.
    pub generation: usize,
    /// Its wall-clock nanoseconds (0 when timings are left out).
    pub ns: u64,
    /// Unreachable objects it found.
    pub collected: u64,
}

/// What the picture shows.
#[derive(Clone, Copy, Debug)]
pub struct Series<'a> {
    /// The title's subject (`mixed, n = 50000, seed 1`).
    pub subject: &'a str,
    /// The generations' sizes, by operation, ascending.
    pub samples: &'a [Sample],
    /// The collections, by operation, ascending.
    pub pauses: &'a [Pause],
    /// The workload's operations.
    pub total_ops: u64,
    /// Whether pauses were timed (otherwise the bars all have one height).
    pub timed: bool,
}

/// Draws the timeline.
pub fn render(series: &Series<'_>) -> String {
    let mut svg = Svg::new(WIDTH, HEIGHT);
    let ops = series.total_ops.max(1) as f64;
    let x = |op: u64| LEFT + (op as f64 / ops) * (RIGHT - LEFT);
    let max_objects = series
        .samples
        .iter()
        .map(|s| s.generations.iter().sum::<u64>())
        .max()
        .unwrap_or(0) as f64;
    let obj_step = nice_step(max_objects.max(1.0), 5.0);
    let obj_max = (max_objects / obj_step).ceil().max(1.0) * obj_step;
    let y_obj = |v: f64| BOTTOM - v / obj_max * (BOTTOM - TOP);
    let max_pause = series.pauses.iter().map(|p| p.ns).max().unwrap_or(0) as f64;
    let pause_step = nice_step(max_pause.max(1_000.0), 5.0);
    let pause_max = (max_pause / pause_step).ceil().max(1.0) * pause_step;
    let y_pause = |ns: f64| BOTTOM - ns / pause_max * (BOTTOM - TOP);

    // Title.
    let by_gen = [0, 1, 2].map(|g| series.pauses.iter().filter(|p| p.generation == g).count());
    svg.text(
        LEFT - 60.0,
        32.0,
        19.0,
        "font-weight=\"bold\" fill=\"#202124\"",
        &format!("pyheap timeline: {}", series.subject),
    );
    let mut subtitle = format!(
        "{} operations; {} collections (generation 0: {}, 1: {}, 2: {})",
        grouped(series.total_ops),
        series.pauses.len(),
        by_gen[0],
        by_gen[1],
        by_gen[2]
    );
    if series.timed {
        let total: u64 = series.pauses.iter().map(|p| p.ns).sum();
        subtitle.push_str(&format!(
            "; longest pause {}, all pauses {}",
            Nanos(max_pause as u64),
            Nanos(total)
        ));
    }
    svg.text(LEFT - 60.0, 54.0, 12.5, "fill=\"#3c4043\"", &subtitle);

    // Legend.
    let mut lx = LEFT;
    for g in (0..3).rev() {
        svg.rect(lx, 70.0, 14.0, 12.0, &format!("fill=\"{}\"", AREA[g]));
        let label = format!("generation {g} objects");
        svg.text(lx + 19.0, 80.0, 11.5, "fill=\"#3c4043\"", &label);
        lx += 19.0 + label.len() as f64 * 6.3 + 16.0;
    }
    for (g, colour) in BAR.iter().enumerate() {
        svg.rect(lx, 68.0, 3.0, 15.0, &format!("fill=\"{colour}\""));
        let label = format!("pause, gen {g}");
        svg.text(lx + 8.0, 80.0, 11.5, "fill=\"#3c4043\"", &label);
        lx += 8.0 + label.len() as f64 * 6.3 + 14.0;
    }

    // Grid and axes.
    let mut v = 0.0;
    while v <= obj_max + obj_step * 0.01 {
        let y = y_obj(v);
        svg.line(LEFT, y, RIGHT, y, "stroke=\"#eceff1\" stroke-width=\"1\"");
        svg.text(
            LEFT - 8.0,
            y + 4.0,
            11.0,
            "text-anchor=\"end\" fill=\"#5f6368\"",
            &grouped(v as u64),
        );
        v += obj_step;
    }
    let mut p = 0.0;
    while p <= pause_max + pause_step * 0.01 {
        let y = y_pause(p);
        let label = if series.timed {
            Nanos(p as u64).to_string()
        } else {
            String::new()
        };
        svg.line(RIGHT, y, RIGHT + 5.0, y, "stroke=\"#5f6368\"");
        svg.text(RIGHT + 8.0, y + 4.0, 11.0, "fill=\"#5f6368\"", &label);
        p += pause_step;
    }
    let op_step = nice_step(ops, 8.0);
    let mut o = 0.0;
    while o <= ops + op_step * 0.01 {
        let xx = x(o as u64);
        svg.line(xx, BOTTOM, xx, BOTTOM + 5.0, "stroke=\"#5f6368\"");
        svg.text(
            xx,
            BOTTOM + 18.0,
            11.0,
            "text-anchor=\"middle\" fill=\"#5f6368\"",
            &grouped(o as u64),
        );
        o += op_step;
    }

    // The stacked areas: generation 2 at the bottom, then 1, then 0.
    let samples = thin(series.samples);
    if !samples.is_empty() {
        let mut lower: Vec<f64> = vec![0.0; samples.len()];
        for g in [2usize, 1, 0] {
            let upper: Vec<f64> = samples
                .iter()
                .zip(&lower)
                .map(|(s, l)| l + s.generations[g] as f64)
                .collect();
            let mut points: Vec<(f64, f64)> = samples
                .iter()
                .zip(&upper)
                .map(|(s, u)| (x(s.op), y_obj(*u)))
                .collect();
            points.extend(
                samples
                    .iter()
                    .zip(&lower)
                    .rev()
                    .map(|(s, l)| (x(s.op), y_obj(*l))),
            );
            svg.polygon(
                &points,
                &format!(
                    "fill=\"{}\" stroke=\"{}\" stroke-width=\"0.6\"",
                    AREA[g], AREA[g]
                ),
            );
            lower = upper;
        }
    }

    // The pauses.
    for pause in series.pauses {
        let height = if series.timed {
            pause.ns as f64
        } else {
            pause_max * (pause.generation as f64 + 1.0) / 4.0
        };
        let top = y_pause(height);
        svg.rect(
            x(pause.op) - 0.8,
            top,
            1.6,
            BOTTOM - top,
            &format!(
                "fill=\"{}\" fill-opacity=\"0.9\"",
                BAR[pause.generation.min(2)]
            ),
        );
    }

    svg.line(
        LEFT,
        BOTTOM,
        RIGHT,
        BOTTOM,
        "stroke=\"#5f6368\" stroke-width=\"1\"",
    );
    svg.line(
        LEFT,
        TOP,
        LEFT,
        BOTTOM,
        "stroke=\"#5f6368\" stroke-width=\"1\"",
    );
    svg.line(
        RIGHT,
        TOP,
        RIGHT,
        BOTTOM,
        "stroke=\"#5f6368\" stroke-width=\"1\"",
    );
    svg.text(
        (LEFT + RIGHT) / 2.0,
        BOTTOM + 42.0,
        12.5,
        "text-anchor=\"middle\" fill=\"#3c4043\"",
        "operations",
    );
    let mid = (TOP + BOTTOM) / 2.0;
    svg.text(
        LEFT - 66.0,
        mid,
        12.5,
        &format!(
            "text-anchor=\"middle\" fill=\"#3c4043\" transform=\"rotate(-90 {} {})\"",
            num(LEFT - 66.0),
            num(mid)
        ),
        "tracked objects, stacked by generation",
    );
    let right_label = if series.timed {
        "collection pause (bars)"
    } else {
        "collections (bars; timings left out)"
    };
    svg.text(
        RIGHT + 78.0,
        mid,
        12.5,
        &format!(
            "text-anchor=\"middle\" fill=\"#3c4043\" transform=\"rotate(90 {} {})\"",
            num(RIGHT + 78.0),
            num(mid)
        ),
        right_label,
    );
    svg.finish()
}

/// At most [`MAX_POINTS`] samples, evenly spaced, the last one kept.
fn thin(samples: &[Sample]) -> Vec<Sample> {
    if samples.len() <= MAX_POINTS {
        return samples.to_vec();
    }
    let stride = samples.len().div_ceil(MAX_POINTS);
    let mut out: Vec<Sample> = samples.iter().step_by(stride).copied().collect();
    if let Some(&last) = samples.last() {
        if out.last() != Some(&last) {
            out.push(last);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_the_ends() {
        let samples: Vec<Sample> = (0..4_000)
            .map(|op| Sample {
                op,
                generations: [op, 0, 0],
            })
            .collect();
        let thinned = thin(&samples);
        assert!(thinned.len() <= MAX_POINTS + 1);
        assert_eq!(thinned[0].op, 0);
        assert_eq!(thinned.last().map(|s| s.op), Some(3_999));
    }
}
