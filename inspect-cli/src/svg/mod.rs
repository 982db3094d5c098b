//! Hand-written SVG: a tiny writer ([`Svg`]) and the two pictures of the tool.
//!
//! * [`heap_map`]: every arena as a row of pools, coloured by size class, filled by
//!   occupancy; direct blocks as a summary row (`heap-inspect map`, `replay --svg`).
//! * [`timeline`]: the generations' sizes stacked over a workload's operations, with each
//!   collection's pause as a bar on a second axis (`heap-inspect timeline`).
//!
//! Numbers are written with at most one decimal and no randomness, so that the same heap gives
//! the same file byte for byte (the tests pin pictures of small heaps with snapshots).

pub mod heap_map;
pub mod timeline;

use std::fmt::Write;

/// The font of every text.
const FONT: &str = "DejaVu Sans, Verdana, Arial, sans-serif";

/// An SVG document being written.
#[derive(Clone, Debug)]
pub struct Svg {
    body: String,
    width: f64,
    height: f64,
    defs: String,
}

impl Svg {
    /// A document of `width` x `height` pixels with a white background.
    pub fn new(width: f64, height: f64) -> Self {
        let mut svg = Svg {
            body: String::new(),
            width,
            height,
            defs: String::new(),
        };
        svg.rect(0.0, 0.0, width, height, "fill=\"#ffffff\"");
        svg
    }

    /// Adds raw markup to `<defs>` (patterns).
    pub fn def(&mut self, markup: &str) {
        self.defs.push_str(markup);
        self.defs.push('\n');
    }

    /// A rectangle; `attrs` are extra attributes (`fill="#abc" stroke="#000"`).
    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, attrs: &str) {
        let _ = writeln!(
            self.body,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" {attrs}/>",
            num(x),
            num(y),
            num(w.max(0.0)),
            num(h.max(0.0))
        );
    }

    /// A rectangle with a tooltip (`<title>`), shown by browsers on hover.
    pub fn rect_titled(&mut self, x: f64, y: f64, w: f64, h: f64, attrs: &str, title: &str) {
        let _ = writeln!(
            self.body,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" {attrs}><title>{}</title></rect>",
            num(x),
            num(y),
            num(w.max(0.0)),
            num(h.max(0.0)),
            escape(title)
        );
    }

    /// A line.
    pub fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, attrs: &str) {
        let _ = writeln!(
            self.body,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" {attrs}/>",
            num(x1),
            num(y1),
            num(x2),
            num(y2)
        );
    }

    /// A polygon through `points`.
    pub fn polygon(&mut self, points: &[(f64, f64)], attrs: &str) {
        let mut list = String::with_capacity(points.len() * 12);
        for (i, (x, y)) in points.iter().enumerate() {
            if i > 0 {
                list.push(' ');
            }
            let _ = write!(list, "{},{}", num(*x), num(*y));
        }
        let _ = writeln!(self.body, "<polygon points=\"{list}\" {attrs}/>");
    }

    /// Text at (`x`, `y`) (the baseline), `size` pixels; `attrs` may set `text-anchor`,
    /// `font-weight`, `fill`, a `transform`.
    pub fn text(&mut self, x: f64, y: f64, size: f64, attrs: &str, content: &str) {
        let _ = writeln!(
            self.body,
            "<text x=\"{}\" y=\"{}\" font-size=\"{}\" {attrs}>{}</text>",
            num(x),
            num(y),
            num(size),
            escape(content)
        );
    }

    /// The document's text.
    pub fn finish(self) -> String {
        let mut out = String::with_capacity(self.body.len() + self.defs.len() + 400);
        let _ = writeln!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"{FONT}\">",
            w = num(self.width),
            h = num(self.height)
        );
        if !self.defs.is_empty() {
            let _ = write!(out, "<defs>\n{}</defs>\n", self.defs);
        }
        out.push_str(&self.body);
        out.push_str("</svg>\n");
        out
    }
}

/// A number with at most one decimal, without a trailing `.0`.
pub fn num(value: f64) -> String {
    let rounded = (value * 10.0).round() / 10.0;
    if rounded == rounded.trunc() {
        format!("{}", rounded as i64)
    } else {
        format!("{rounded:.1}")
    }
}

/// Text with `&`, `<`, `>` and `"` escaped, and control characters (which XML 1.0 forbids,
/// tabs and line ends aside), U+FFFE, U+FFFF (which it forbids too) and the bidirectional
/// formatting characters (which reorder what a viewer shows) written as the text reports
/// write them (`\u{1b}`, `\u{202e}`): a file name may hold any of them.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control()
                || c == '\u{fffe}'
                || c == '\u{ffff}'
                || crate::heapgraph::is_bidi_control(c) =>
            {
                out.extend(c.escape_unicode())
            }
            c => out.push(c),
        }
    }
    out
}

/// An HSL colour (hue in degrees, saturation and lightness in 0..=1) as `#rrggbb`.
pub fn hsl(hue: f64, saturation: f64, lightness: f64) -> String {
    let c = (1.0 - (2.0 * lightness - 1.0).abs()) * saturation;
    let h = hue.rem_euclid(360.0) / 60.0;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = lightness - c / 2.0;
    let byte = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    format!("#{:02x}{:02x}{:02x}", byte(r), byte(g), byte(b))
}

/// A "nice" step for about `ticks` ticks from 0 to `max`: 1, 2 or 5 times a power of ten.
pub fn nice_step(max: f64, ticks: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / ticks;
    let power = 10f64.powf(raw.log10().floor());
    let unit = raw / power;
    let nice = if unit <= 1.0 {
        1.0
    } else if unit <= 2.0 {
        2.0
    } else if unit <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// A count with thousands separators (`1,234,567`).
pub fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in the largest unit that keeps a number ≥ 1 (`512 B`, `16 KiB`, `3.5 MiB`).
pub fn bytes(value: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = value as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 || v >= 100.0 || v == v.trunc() {
        format!("{} {}", v.round(), UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_have_one_decimal_at_most() {
        assert_eq!(num(3.0), "3");
        assert_eq!(num(2.25), "2.3");
        assert_eq!(num(-0.04), "0");
    }

    #[test]
    fn colours_and_text() {
        assert_eq!(hsl(0.0, 1.0, 0.5), "#ff0000");
        assert_eq!(hsl(240.0, 1.0, 0.5), "#0000ff");
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(grouped(1234567), "1,234,567");
        assert_eq!(grouped(12), "12");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(16 * 1024), "16 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 + 512 * 1024), "3.5 MiB");
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(1000.0, 5.0), 200.0);
        assert_eq!(nice_step(7.0, 5.0), 2.0);
        assert_eq!(nice_step(0.0, 5.0), 1.0);
    }
}
