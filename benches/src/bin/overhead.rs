//! Prints the envelope overhead table (Markdown) of docs/performance.md, and
//! the replay state per tracked sender.
use mqseal::replay::{DEFAULT_WINDOW, MAX_WINDOW, ReplayWindow};

fn main() {
    print!("{}", mqseal_benches::overhead_table());
    println!();
    println!("| replay window (bits) | ReplayWindow::memory_bytes |");
    println!("|---|---|");
    for bits in [64, 128, DEFAULT_WINDOW, 1024, MAX_WINDOW] {
        let w = ReplayWindow::new(bits).expect("a valid window size");
        let note = if bits == DEFAULT_WINDOW {
            " (default)"
        } else {
            ""
        };
        println!("| {bits}{note} | {} B |", w.memory_bytes());
    }
}
