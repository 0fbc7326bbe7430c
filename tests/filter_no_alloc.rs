//! Proves that `Filter::matches` never allocates, using a counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use herald::domain::filter::{Filter, MessageView};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // Only count on the measuring thread: the test harness may allocate on
    // other threads at any time. Const-initialised, so reading it never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if COUNTING.with(Cell::get) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: delegates every call to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn evaluation_does_not_allocate() {
    let exprs = [
        r#"data.priority == "high" && data.total > 100"#,
        r#"data.priority != "low" || data.total <= 1.5"#,
        r#"data.status in ["paid", "shipped"] && "vip" in data.tags"#,
        r#"data.customer.name.startsWith("Jü") && topic.endsWith(".eu")"#,
        r#"data.customer.name.contains("rg") && event == "order.created" && seq >= 42"#,
        r#"size(data.customer.name) == 6 && data.items.size() == 3 && size(data.customer) == 2"#,
        "has(data.customer.country) && !has(data.customer.city) && has(data.items[2])",
        "data.missing.deep == 1 || data.items[7] != 0 || data.priority.x < 3",
        r#"!(data.missing == 1) && !data.missing.startsWith("x") && data.items == [1, 2, 3]"#,
        r#"data.items[data.idx] == 2 && -data.total < 0 && data["customer"]["country"] == "DE""#,
        r#"data.customer == data.customer && "country" in data.customer"#,
    ];
    let filters: Vec<Filter> = exprs
        .iter()
        .map(|s| Filter::compile(s).unwrap_or_else(|e| panic!("{s}: {e}")))
        .collect();
    let data: serde_json::Value = serde_json::from_str(
        r#"{"priority":"high","total":150,"status":"paid","tags":["vip","eu"],"idx":1,
            "customer":{"country":"DE","name":"Jürgen"},"items":[1,2,3]}"#,
    )
    .expect("valid payload");
    let msg = MessageView {
        priority: 3,
        key: None,
        topic: "orders.eu",
        event: "order.created",
        seq: 42,
        data: &data,
    };

    // Sanity check that the counter works at all on this thread.
    COUNTING.with(|c| c.set(true));
    drop(std::hint::black_box(vec![1u8; 16]));
    COUNTING.with(|c| c.set(false));
    assert_eq!(
        ALLOCS.swap(0, Ordering::SeqCst),
        1,
        "allocation counter is not counting"
    );

    let mut matched = 0usize;
    COUNTING.with(|c| c.set(true));
    for _ in 0..1000 {
        for f in &filters {
            matched += usize::from(f.matches(std::hint::black_box(&msg)));
        }
    }
    COUNTING.with(|c| c.set(false));
    let allocs = ALLOCS.load(Ordering::SeqCst);

    assert_eq!(allocs, 0, "evaluation allocated {allocs} times");
    // Every expression except the missing-fields one is written to match.
    assert_eq!(matched, 1000 * (filters.len() - 1));
}
