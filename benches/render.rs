//! Benchmark: load (parse + validate) and render a large manifest.
//!
//! 1,000 scrape jobs with 10 targets each (10,000 targets), 50 alerts, a few channels,
//! etcd and Alertmanager enabled. Prints wall time per phase (min / median / max over
//! several runs), the peak heap of one load + render, and the rendered tree's size.
//! This is a report, not a test: it exits 0 whether or not the targets are met.
//!
//! Run with `cargo bench --bench render`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use monstack::manifest::{self, Source};
use monstack::model::Stack;
use monstack::render::{self, Tree};

const JOBS: usize = 1_000;
const TARGETS_PER_JOB: usize = 10;
const ALERTS: usize = 50;
const WARMUP: usize = 2;
const ITERATIONS: usize = 20;

const TARGET_MS: f64 = 100.0;
const TARGET_MIB: f64 = 64.0;

/// Counts live and peak heap bytes; everything else is delegated to the system allocator.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = CURRENT.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(bytes: usize) {
    CURRENT.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Starts a peak measurement: the peak becomes the bytes live right now.
fn reset_peak() -> usize {
    let now = CURRENT.load(Ordering::SeqCst);
    PEAK.store(now, Ordering::SeqCst);
    now
}

fn peak() -> usize {
    PEAK.load(Ordering::SeqCst)
}

/// The manifest under test, built in memory.
fn manifest_text() -> String {
    use std::fmt::Write;

    let mut s = String::with_capacity(1 << 20);
    s.push_str("version: 1\nproject: bench\n");
    s.push_str("prometheus:\n  scrape_interval: 15s\n");
    s.push_str("etcd: {}\nalertmanager: {}\n");
    s.push_str("targets:\n");
    for j in 0..JOBS {
        writeln!(s, "  - job: job{j}").unwrap();
        s.push_str("    interval: 30s\n");
        writeln!(s, "    labels: {{team: t{}}}", j % 20).unwrap();
        s.push_str("    targets:\n");
        for t in 0..TARGETS_PER_JOB {
            let n = j * TARGETS_PER_JOB + t;
            let (a, b, c) = (n / 65_536 % 256, n / 256 % 256, n % 256);
            writeln!(s, "      - 10.{a}.{b}.{c}:9100").unwrap();
        }
    }
    s.push_str("channels:\n");
    s.push_str("  - name: hook\n    webhook: {url: http://sink:8080/hook}\n");
    s.push_str("  - name: audit\n    send_resolved: false\n    webhook: {url: http://audit:8080/in, max_alerts: 10}\n");
    s.push_str("  - name: chat\n    slack: {url: https://hooks.slack.example/T000/B000/XXXX, channel: '#ops'}\n");
    s.push_str("alerts:\n");
    for n in 0..ALERTS {
        writeln!(s, "  - name: A{n}").unwrap();
        writeln!(s, "    expr: 'up{{job=\"job{n}\"}} == 0'").unwrap();
        s.push_str("    for: 1m\n");
        s.push_str("    notify: [hook]\n");
    }
    s
}

fn load(text: &str, root: &Path) -> Stack {
    let source = Source {
        text,
        display_name: "bench/monstack.yaml",
        root,
    };
    match manifest::load(&source, &|_: &str| None) {
        Ok(stack) => stack,
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            panic!("the benchmark manifest does not validate");
        }
    }
}

fn render_tree(stack: &Stack) -> Tree {
    render::render(stack).expect("rendering the benchmark manifest")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// min / median / max in milliseconds.
fn summary(samples: &mut [Duration]) -> (f64, f64, f64) {
    samples.sort();
    let n = samples.len();
    let median = if n % 2 == 1 {
        ms(samples[n / 2])
    } else {
        (ms(samples[n / 2 - 1]) + ms(samples[n / 2])) / 2.0
    };
    (ms(samples[0]), median, ms(samples[n - 1]))
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

fn main() {
    let root = std::env::temp_dir();
    let text = manifest_text();

    // Sanity check (and the figures printed below): the manifest is what it claims to be.
    let stack = load(&text, &root);
    let targets: usize = stack.jobs.iter().map(|j| j.targets.len()).sum();
    assert_eq!(stack.jobs.len(), JOBS, "scrape jobs");
    assert_eq!(targets, JOBS * TARGETS_PER_JOB, "targets");
    assert_eq!(stack.alerts.len(), ALERTS, "alerts");
    let tree = render_tree(&stack);
    let files = tree.files.len();
    let bytes: usize = tree.files.iter().map(|f| f.contents.len()).sum();
    drop((tree, stack));

    for _ in 0..WARMUP {
        black_box(render_tree(&load(black_box(&text), &root)));
    }

    let mut load_times = Vec::with_capacity(ITERATIONS);
    let mut render_times = Vec::with_capacity(ITERATIONS);
    let mut total_times = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        let start = Instant::now();
        let stack = load(black_box(&text), &root);
        let loaded = Instant::now();
        let tree = render_tree(&stack);
        let rendered = Instant::now();
        black_box(&tree);
        load_times.push(loaded - start);
        render_times.push(rendered - loaded);
        total_times.push(rendered - start);
        drop((tree, stack));
    }

    // Peak heap of one load + render, above what was live before it (the manifest text).
    let base = reset_peak();
    let stack = load(black_box(&text), &root);
    let after_load = peak();
    let tree = render_tree(&stack);
    let after_render = peak();
    black_box(&tree);
    drop((tree, stack));
    let peak_load = after_load - base;
    let peak_total = after_render - base;

    let (load_min, load_med, load_max) = summary(&mut load_times);
    let (render_min, render_med, render_max) = summary(&mut render_times);
    let (total_min, total_med, total_max) = summary(&mut total_times);

    println!("monstack render benchmark");
    println!(
        "manifest: {JOBS} jobs, {targets} targets, {ALERTS} alerts, {:.1} KiB of YAML",
        text.len() as f64 / 1024.0
    );
    println!("runs: {ITERATIONS} measured after {WARMUP} warm-up");
    println!();
    println!(
        "{:<22} {:>10} {:>10} {:>10}",
        "phase (wall, ms)", "min", "median", "max"
    );
    println!(
        "{:<22} {load_min:>10.2} {load_med:>10.2} {load_max:>10.2}",
        "load (parse+validate)"
    );
    println!(
        "{:<22} {render_min:>10.2} {render_med:>10.2} {render_max:>10.2}",
        "render"
    );
    println!(
        "{:<22} {total_min:>10.2} {total_med:>10.2} {total_max:>10.2}",
        "load + render"
    );
    println!();
    println!("peak heap, load:          {:>8.2} MiB", mib(peak_load));
    println!("peak heap, load + render: {:>8.2} MiB", mib(peak_total));
    println!(
        "rendered: {files} files, {bytes} bytes ({:.1} KiB)",
        bytes as f64 / 1024.0
    );
    println!();
    let time_ok = total_med < TARGET_MS;
    let mem_ok = mib(peak_total) < TARGET_MIB;
    println!("target: < {TARGET_MS:.0} ms, < {TARGET_MIB:.0} MiB");
    println!(
        "  time   (median load + render) {total_med:>8.2} ms   {}",
        verdict(time_ok)
    );
    println!(
        "  memory (peak load + render)   {:>8.2} MiB  {}",
        mib(peak_total),
        verdict(mem_ok)
    );
}
