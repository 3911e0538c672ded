//! The chat page in a real browser: headless Chromium, driven by `tests/browser/chat.mjs`
//! (Node's `playwright-core`), against the chat example on an ephemeral port.
//!
//! Needs Debian's `chromium` and `npm ci` in `tests/browser`; `.ci/install-browser` does both.
//! Without them this test fails (it never skips). It saves a screenshot of the page to
//! `target/tmp/chat.png`; `HOUSE_SCREENSHOT=overwrite` also writes it to `docs/chat.png` (as
//! `TRYBUILD=overwrite` does for UI tests), so ordinary runs leave the tree clean.

mod browser_support;
mod chat_support;

use std::path::Path;

#[test]
fn two_pages_chat_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));

    // The example's own send rate, which the script runs into.
    let chat = chat_support::spawn_chat_with(chat_support::app::Rate::default());
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("chat.png");
    let _ = std::fs::remove_file(&screenshot);
    let stdout = browser_support::run_driver(
        "chat.mjs",
        &[
            format!("http://{}", chat.addr),
            screenshot.display().to_string(),
        ],
    );
    for check in [
        "ok: bob receives ann's message",
        "ok: a new tab of ann's pre-fills her name",
        "ok: the wait is explained",
        "ok: eve no longer receives the old room's messages",
        "ok: the switched page gets the new room's messages on the same connection",
        "ok: hal sees ivy arrive: 2 online",
        "ok: a second tab of hal's still counts hal once: 2 online",
        "ok: ivy leaves and hal sees 1 online",
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
