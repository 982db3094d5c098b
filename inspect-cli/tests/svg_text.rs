//! Text the pictures take from a file or a path stays well-formed XML.

use inspect_cli::svg::escape;

/// XML 1.0's `Char`: a character an XML document may contain at all.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// A file name with control characters (an escape sequence, a NUL-adjacent byte) became the
/// SVG's title raw: no XML parser accepts the picture then. They are escaped as the text
/// reports escape them (`\u{1b}`).
#[test]
fn control_characters_in_svg_text_are_escaped() {
    let text = escape("heap\u{1b}[31m\u{1}\u{7f}\u{fffe}.jsonl <&>");
    assert!(text.chars().all(xml_char), "{text:?}");
    assert_eq!(
        text,
        "heap\\u{1b}[31m\\u{1}\\u{7f}\\u{fffe}.jsonl &lt;&amp;&gt;"
    );
}

/// A file name with bidirectional formatting characters (U+202E, RIGHT-TO-LEFT OVERRIDE)
/// reordered the picture's title as a viewer shows it (`evil`, U+202E, `lnosj.gpj` reads as
/// `evil` then `jpg.jsonl`); the text reports escape them, the pictures did not.
#[test]
fn bidirectional_characters_in_svg_text_are_escaped() {
    let text = escape("evil\u{202e}lnosj.gpj\u{2066}\u{200f}\u{61c}");
    assert_eq!(text, "evil\\u{202e}lnosj.gpj\\u{2066}\\u{200f}\\u{61c}");
}
