//! Tracing events when pools and arenas are taken and released. (A test binary of its own: tracing
//! caches per call site whether anyone listens, which races with other tests' threads.)

use obj_alloc::{ObjAlloc, ObjConfig};

/// A subscriber that keeps the messages of the `obj_alloc` events it sees.
#[derive(Clone, Default)]
struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

struct Message<'a>(&'a mut String);

impl tracing::field::Visit for Message<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            *self.0 = format!("{value:?}");
        }
    }
}

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().target() == "obj_alloc" {
            let mut message = String::new();
            event.record(&mut Message(&mut message));
            self.0.lock().unwrap().push(message);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn taking_and_releasing_pools_and_arenas_emit_tracing_events() {
    let recorder = Recorder::default();
    tracing::subscriber::with_default(recorder.clone(), || {
        let heap = ObjAlloc::new(ObjConfig::default()).unwrap();
        let a = heap.alloc(64).unwrap();
        // SAFETY: a live block of `heap` with 64 bytes, freed once.
        unsafe { heap.dealloc(a, 64) };
    });
    let events = recorder.0.lock().unwrap().clone();
    assert_eq!(
        events,
        [
            "arena taken",
            "pool taken",
            "pool released",
            "arena released"
        ]
    );
}
