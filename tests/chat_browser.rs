//! The chat page in a real browser: headless Chromium, driven by `tests/browser/chat.mjs`
//! (Node's `playwright-core`), against the chat example on an ephemeral port.
//!
//! Needs Debian's `chromium` and `npm ci` in `tests/browser`; `.ci/install-browser` does both.
//! Without them this test fails (it never skips). It saves a screenshot of the page to
//! `target/tmp/chat.png`; `HOUSE_SCREENSHOT=overwrite` also writes it to `docs/chat.png` (as
//! `TRYBUILD=overwrite` does for UI tests), so ordinary runs leave the tree clean.

mod chat_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the whole browser script may take.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

#[test]
fn two_pages_chat_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let driver = root.join("tests/browser");
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

    // The example's own send rate, which the script runs into.
    let chat = chat_support::spawn_chat_with(chat_support::app::Rate::default());
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("chat.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut child = Command::new("node")
        .arg(driver.join("chat.mjs"))
        .arg(format!("http://{}", chat.addr))
        .arg(&screenshot)
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
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the browser script failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for check in [
        "ok: bob receives ann's message",
        "ok: a new tab of ann's pre-fills her name",
        "ok: the wait is explained",
        "ok: eve no longer receives the old room's messages",
        "ok: the switched page gets the new room's messages on the same connection",
    ] {
        assert!(stdout.contains(check), "{stdout}");
    }
    assert!(
        screenshot.exists(),
        "no screenshot at {}",
        screenshot.display()
    );

    if std::env::var("HOUSE_SCREENSHOT").as_deref() == Ok("overwrite") {
        std::fs::copy(&screenshot, root.join("docs/chat.png")).unwrap();
    }
}
