//! The heap map: every arena a row of pools, each pool coloured by its size class and filled
//! by its occupancy, so that fragmentation shows at a glance.
//!
//! ```text
//!   title: source, arenas, pools used/full/empty/uncarved, blocks in use, direct blocks
//!   legend: pool states; one swatch per size class present (block size, pools)
//!   arena 0  [▆][█][▂][ ][/][/]...   41/63 pools used, 72% of their blocks
//!   arena 1  ...
//!   direct   [████      ]            12 blocks, 1.5 MiB (bar: bytes, one row = one arena)
//! ```
//!
//! A used pool is a light tint of its class's colour with a bar of the full colour whose height
//! is its occupancy (blocks handed out / blocks it can hold). An empty pool (carved, free) is
//! white with a dashed border; an uncarved pool is hatched grey.

use obj_alloc::{HeapMap, PoolState, SizeClass};
use pyheap::obj_alloc;

use super::{bytes, grouped, hsl, Svg};

const MARGIN: f64 = 20.0;
const LABEL: f64 = 74.0;
const CELL_W: f64 = 14.0;
const CELL_H: f64 = 28.0;
const GAP: f64 = 2.0;
const SUMMARY: f64 = 230.0;
const ROW: f64 = CELL_H + 6.0;
const LEGEND_COLUMN: f64 = 150.0;

/// The colour of size class `index` (of `NUM_SIZE_CLASSES`): hues from blue through green and yellow to red
/// as blocks grow, neighbours told apart by lightness.
pub fn class_colour(index: usize) -> String {
    let (hue, light) = class_hue(index);
    hsl(hue, 0.68, light)
}

/// A light tint of the class's colour (the background of its pools).
fn class_tint(index: usize) -> String {
    let (hue, _) = class_hue(index);
    hsl(hue, 0.6, 0.9)
}

fn class_hue(index: usize) -> (f64, f64) {
    let hue = 240.0 - index as f64 * (300.0 / (obj_alloc::NUM_SIZE_CLASSES - 1) as f64);
    let light = [0.4, 0.53, 0.66][index % 3];
    (hue, light)
}

/// Counts over the whole map (the title's totals).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapTotals {
    /// Arenas.
    pub arenas: u64,
    /// Pools serving a class.
    pub used_pools: u64,
    /// Of those, pools with every block handed out.
    pub full_pools: u64,
    /// Carved pools with no block handed out.
    pub empty_pools: u64,
    /// Pools never carved.
    pub uncarved_pools: u64,
    /// Blocks handed out in used pools.
    pub blocks: u64,
    /// Blocks the used pools can hold.
    pub capacity: u64,
}

impl MapTotals {
    /// The totals of `map`.
    pub fn of(map: &HeapMap) -> Self {
        let mut t = MapTotals {
            arenas: map.arenas.len() as u64,
            ..MapTotals::default()
        };
        for pool in map.arenas.iter().flat_map(|a| &a.pools) {
            match *pool {
                PoolState::Uncarved => t.uncarved_pools += 1,
                PoolState::Empty => t.empty_pools += 1,
                PoolState::Used {
                    blocks, capacity, ..
                } => {
                    t.used_pools += 1;
                    t.full_pools += u64::from(blocks >= capacity);
                    t.blocks += u64::from(blocks);
                    t.capacity += u64::from(capacity);
                }
            }
        }
        t
    }

    /// Blocks handed out over the capacity of used pools, in percent.
    pub fn occupancy(&self) -> f64 {
        if self.capacity == 0 {
            0.0
        } else {
            100.0 * self.blocks as f64 / self.capacity as f64
        }
    }
}

/// Draws `map`; `source` names the heap in the title (`demo`, a file name, ...).
pub fn render(map: &HeapMap, source: &str) -> String {
    let totals = MapTotals::of(map);
    let pools = map.arenas.iter().map(|a| a.pools.len()).max().unwrap_or(0);
    let grid_w = pools.max(16) as f64 * (CELL_W + GAP);
    let width = MARGIN + LABEL + grid_w + 12.0 + SUMMARY + MARGIN;

    // Classes present, with their pool counts.
    let mut class_pools = [0u64; obj_alloc::NUM_SIZE_CLASSES];
    for pool in map.arenas.iter().flat_map(|a| &a.pools) {
        if let PoolState::Used { class, .. } = *pool {
            if let Some(n) = class_pools.get_mut(class) {
                *n += 1;
            }
        }
    }
    let present: Vec<usize> = (0..class_pools.len())
        .filter(|&c| class_pools[c] > 0)
        .collect();
    let legend_w = width - 2.0 * MARGIN;
    let per_line = ((legend_w / LEGEND_COLUMN).floor() as usize).max(1);
    let class_lines = present.len().div_ceil(per_line);

    let legend_top = 76.0;
    let classes_top = legend_top + 26.0;
    let rows_top = classes_top + class_lines as f64 * 20.0 + 16.0;
    let rows = map.arenas.len() as f64 + 1.0; // + the direct-blocks row
    let height = rows_top + rows * ROW + 30.0;

    let mut svg = Svg::new(width, height);
    svg.def(concat!(
        "<pattern id=\"uncarved\" width=\"5\" height=\"5\" patternUnits=\"userSpaceOnUse\" ",
        "patternTransform=\"rotate(45)\"><rect width=\"5\" height=\"5\" fill=\"#eef0f2\"/>",
        "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"5\" stroke=\"#c9ced4\" stroke-width=\"2\"/></pattern>"
    ));

    // Title and totals.
    svg.text(
        MARGIN,
        32.0,
        19.0,
        "font-weight=\"bold\" fill=\"#202124\"",
        &format!("pyheap heap map: {source}"),
    );
    let arena_bytes = totals.arenas * map.arena_size as u64;
    svg.text(
        MARGIN,
        54.0,
        12.5,
        "fill=\"#3c4043\"",
        &format!(
            "{} arenas ({}), {} pools of {}: {} in use ({} full), {} empty, {} uncarved; {} of {} blocks in use ({:.0}%); {} direct blocks ({})",
            totals.arenas,
            bytes(arena_bytes),
            grouped(totals.used_pools + totals.empty_pools + totals.uncarved_pools),
            bytes(map.pool_size as u64),
            grouped(totals.used_pools),
            grouped(totals.full_pools),
            grouped(totals.empty_pools),
            grouped(totals.uncarved_pools),
            grouped(totals.blocks),
            grouped(totals.capacity),
            totals.occupancy(),
            grouped(map.direct_blocks),
            bytes(map.direct_bytes as u64),
        ),
    );

    // Legend: pool states.
    let mut x = MARGIN;
    let states: [(&str, &str); 3] = [
        (
            "in use (bar: blocks handed out / capacity)",
            "fill=\"#d6e4f5\" stroke=\"#3b6fb6\" stroke-width=\"0.8\"",
        ),
        (
            "empty (carved, free)",
            "fill=\"#ffffff\" stroke=\"#80868b\" stroke-width=\"1\" stroke-dasharray=\"2,2\"",
        ),
        ("uncarved", "fill=\"url(#uncarved)\""),
    ];
    for (i, (label, attrs)) in states.into_iter().enumerate() {
        svg.rect(x, legend_top - 12.0, 10.0, 16.0, attrs);
        if i == 0 {
            svg.rect(x, legend_top - 3.0, 10.0, 7.0, "fill=\"#3b6fb6\"");
        }
        svg.text(x + 15.0, legend_top + 1.0, 11.5, "fill=\"#3c4043\"", label);
        x += 15.0 + label.len() as f64 * 6.4 + 22.0;
    }
    // Legend: size classes.
    for (i, &class) in present.iter().enumerate() {
        let lx = MARGIN + (i % per_line) as f64 * LEGEND_COLUMN;
        let ly = classes_top + (i / per_line) as f64 * 20.0;
        let size = SizeClass::from_index(class).map_or(0, SizeClass::block_size);
        svg.rect(
            lx,
            ly - 10.0,
            12.0,
            12.0,
            &format!("fill=\"{}\"", class_colour(class)),
        );
        svg.text(
            lx + 17.0,
            ly,
            11.0,
            "fill=\"#3c4043\"",
            &format!(
                "{size} B: {} pool{}",
                class_pools[class],
                if class_pools[class] == 1 { "" } else { "s" }
            ),
        );
    }

    // One row per arena.
    for (row, arena) in map.arenas.iter().enumerate() {
        let y = rows_top + row as f64 * ROW;
        svg.text(
            MARGIN,
            y + CELL_H * 0.65,
            11.5,
            "fill=\"#3c4043\"",
            &format!("arena {}", arena.slot),
        );
        let (mut used, mut blocks, mut capacity) = (0u64, 0u64, 0u64);
        for (i, pool) in arena.pools.iter().enumerate() {
            let x = MARGIN + LABEL + i as f64 * (CELL_W + GAP);
            let tip = |what: String| format!("arena {}, pool {i}: {what}", arena.slot);
            match *pool {
                PoolState::Uncarved => svg.rect_titled(
                    x,
                    y,
                    CELL_W,
                    CELL_H,
                    "fill=\"url(#uncarved)\"",
                    &tip("uncarved".into()),
                ),
                PoolState::Empty => svg.rect_titled(
                    x + 0.5,
                    y + 0.5,
                    CELL_W - 1.0,
                    CELL_H - 1.0,
                    "fill=\"#ffffff\" stroke=\"#80868b\" stroke-width=\"1\" stroke-dasharray=\"2,2\"",
                    &tip("empty".into()),
                ),
                PoolState::Used {
                    class,
                    blocks: b,
                    capacity: c,
                } => {
                    used += 1;
                    blocks += u64::from(b);
                    capacity += u64::from(c);
                    let size = SizeClass::from_index(class).map_or(0, SizeClass::block_size);
                    let colour = class_colour(class);
                    svg.rect_titled(
                        x,
                        y,
                        CELL_W,
                        CELL_H,
                        &format!(
                            "fill=\"{}\" stroke=\"{colour}\" stroke-width=\"0.8\"",
                            class_tint(class)
                        ),
                        &tip(format!("{size} B blocks, {b} of {c} in use")),
                    );
                    let fill = if c == 0 {
                        0.0
                    } else {
                        (f64::from(b) / f64::from(c)).min(1.0)
                    };
                    let h = (CELL_H - 2.0) * fill;
                    if h > 0.0 {
                        svg.rect(
                            x + 1.0,
                            y + CELL_H - 1.0 - h,
                            CELL_W - 2.0,
                            h,
                            &format!("fill=\"{colour}\""),
                        );
                    }
                }
            }
        }
        let pct = if capacity == 0 {
            0.0
        } else {
            100.0 * blocks as f64 / capacity as f64
        };
        svg.text(
            MARGIN + LABEL + grid_w + 12.0,
            y + CELL_H * 0.65,
            11.5,
            "fill=\"#3c4043\"",
            &format!("{used}/{} pools in use, {pct:.0}% full", arena.pools.len()),
        );
    }

    // Direct blocks: a bar whose full width is one arena's bytes.
    let y = rows_top + map.arenas.len() as f64 * ROW;
    svg.text(
        MARGIN,
        y + CELL_H * 0.65,
        11.5,
        "fill=\"#3c4043\"",
        "direct",
    );
    let x0 = MARGIN + LABEL;
    svg.rect(
        x0,
        y,
        grid_w - GAP,
        CELL_H,
        "fill=\"#f8f9fa\" stroke=\"#dadce0\" stroke-width=\"1\"",
    );
    let arenas_worth = map.direct_bytes as f64 / map.arena_size.max(1) as f64;
    let bar = (grid_w - GAP) * arenas_worth.min(1.0);
    if bar > 0.0 {
        svg.rect(x0, y, bar.max(1.5), CELL_H, "fill=\"#5f6368\"");
    }
    let label = if map.direct_blocks == 0 {
        "no direct blocks".to_owned()
    } else {
        format!(
            "{} direct blocks, {} ({:.2} arenas)",
            grouped(map.direct_blocks),
            bytes(map.direct_bytes as u64),
            arenas_worth
        )
    };
    svg.text(
        MARGIN + LABEL + grid_w + 12.0,
        y + CELL_H * 0.65,
        11.5,
        "fill=\"#3c4043\"",
        &label,
    );
    svg.text(
        MARGIN,
        height - 10.0,
        10.5,
        "fill=\"#80868b\"",
        &format!(
            "one cell = one {} pool; a used pool's tint is its size class, its bar the share of its blocks handed out; the direct row's full width is one arena ({})",
            bytes(map.pool_size as u64),
            bytes(map.arena_size as u64)
        ),
    );
    svg.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use obj_alloc::ArenaMap;

    #[test]
    fn totals_count_every_state() {
        let map = HeapMap {
            arena_size: 1 << 20,
            pool_size: 1 << 14,
            arenas: vec![ArenaMap {
                slot: 0,
                pools: vec![
                    PoolState::Used {
                        class: 0,
                        blocks: 10,
                        capacity: 10,
                    },
                    PoolState::Used {
                        class: 3,
                        blocks: 5,
                        capacity: 20,
                    },
                    PoolState::Empty,
                    PoolState::Uncarved,
                ],
            }],
            direct_blocks: 1,
            direct_bytes: 4096,
        };
        let t = MapTotals::of(&map);
        assert_eq!((t.used_pools, t.full_pools, t.empty_pools), (2, 1, 1));
        assert_eq!((t.uncarved_pools, t.blocks, t.capacity), (1, 15, 30));
        let svg = render(&map, "test");
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("8 B: 1 pool"));
        assert!(svg.contains("1 direct blocks"));
    }
}
