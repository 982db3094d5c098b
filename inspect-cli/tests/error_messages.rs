//! The messages a user sees for malformed files, pinned by a snapshot.

mod common;

use inspect_cli::heapgraph::HeapGraph;

#[test]
fn error_messages() {
    let messages: Vec<String> = common::malformed()
        .into_iter()
        .map(|(name, input)| match HeapGraph::read(input.as_slice()) {
            Ok(_) => format!("{name}: accepted!"),
            Err(error) => format!("{name}: {error}"),
        })
        .collect();
    insta::assert_snapshot!(messages.join("\n"));
}
