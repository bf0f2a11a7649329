//! `check_gitlab_autoscaler`: Monitoring Plugins compatible check (not implemented yet).

fn main() {
    println!("GITLAB AUTOSCALER UNKNOWN - check plugin not implemented yet");
    std::process::exit(3);
}
