//! Runs a `tests/browser/*.mjs` script (Node's `playwright-core` driving Debian's headless
//! `chromium`) with a bounded wait, for the browser tests. Without Chromium or
//! `playwright-core` the test fails with how to install them (it never skips).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a whole browser script may take.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs `script` with `args`, asserts it succeeded, and returns what it printed.
pub(crate) fn run_driver(script: &str, args: &[String]) -> String {
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        chromium.exists(),
        "{} is missing: this test needs Chromium; install it with `.ci/install-browser` \
         (as root: apt-get install chromium chromium-driver)",
        chromium.display()
    );
    assert!(
        driver.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `.ci/install-browser` (or `npm ci` in tests/browser)"
    );
    let mut child = Command::new("node")
        .arg(driver.join(script))
        .args(args)
        .env("CHROMIUM", &chromium)
        .current_dir(&driver)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node is needed to drive the browser");
    // Bounded wait: a hung browser fails the test instead of hanging it.
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the browser script {script} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
}
