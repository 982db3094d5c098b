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
