//! Prints the envelope overhead table (Markdown) of docs/performance.md.
fn main() {
    print!("{}", mqseal_benches::overhead_table());
}
