//! Child processes of any kind: waited for with a time limit (`wait_or_kill`), killed
//! on drop (`KillOnDrop`), and this test binary run again for one test
//! (`rerun_this_test`).

use std::process::{Child, Command, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

/// Waits up to `limit` for `child` to exit; kills it (and waits for it) when it
/// has not, returning `None` then.
pub fn wait_or_kill(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// This test binary again, running only the test `NAME` of the module `module` (the
/// caller's `module_path!()`), exactly, on one thread: for a test that needs a process
/// of its own (process-wide counts, a server to kill). Add `--ignored` for an ignored
/// test.
pub fn rerun_this_test(module: &str, name: &str) -> Command {
    let exe = std::env::current_exe().expect("the path of the test binary");
    // `module_path!()` starts with the crate's name, test names do not.
    let test = match module.split_once("::") {
        Some((_, module)) => format!("{module}::{name}"),
        None => name.to_string(),
    };
    let mut cmd = Command::new(exe);
    cmd.arg(test).args(["--exact", "--test-threads", "1"]);
    cmd
}

/// Kills (and reaps) the child on drop: a failed assertion must not leave a helper
/// process running.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
