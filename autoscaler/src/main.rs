//! The `autoscaler` command.

fn main() {
    println!("autoscaler: not implemented yet");
}
