//! Many tabs, one stream: 8 tabs of the chat page on one origin (more than HTTP/1.1's 6
//! connections per origin) in headless Chromium, driven by `tests/browser/tabs.mjs`, share one
//! stream through `house.js`; every message reaches every tab exactly once and in order, also
//! while and after the tab holding the stream closes. A tab in another room gets that room
//! joined to the same stream, and left when the tab goes (with Web Locks, even when it
//! crashes); an event id delivered twice over the tabs' channel shows once. Once with Web Locks
//! electing the holder, once without them (the BroadcastChannel election).
//!
//! Needs Debian's `chromium` and `npm ci` in `tests/browser`, like `tests/chat_browser.rs`;
//! without them this test fails (it never skips).

mod browser_support;
mod chat_support;

use std::sync::Mutex;

/// One browser at a time: 8 tabs each, on a small machine.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

fn run(mode: &str) -> String {
    let _one = ONE_BROWSER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let chat = chat_support::spawn_chat();
    browser_support::run_driver(
        "tabs.mjs",
        &[format!("http://{}", chat.addr), mode.to_owned()],
    )
}

const CHECKS: [&str; 14] = [
    "ok: 8 tabs of the chat are live in #lobby",
    "ok: exactly one tab holds an EventSource",
    "ok: the server holds exactly one stream for all the tabs",
    "ok: tab 8 of 8 shows all 20 messages once, in order",
    "ok: another tab took the stream over",
    "ok: tab 7 of 7 shows all 40 messages once, in order through the handover",
    "ok: still exactly one tab holds an EventSource",
    "ok: the server holds exactly one stream after the handover",
    "ok: tab 7 of 7 shows all 41 messages once, in order, with nothing repeated late",
    "ok: tab 7 of 7 shows all 42 messages once, in order, a repeated id dropped",
    "ok: no tab was told it missed messages",
    "ok: a tab in another room joins it to the same stream",
    "ok: the porch's last tab closed: the stream left the porch, not the lobby",
    "ok: no script errors",
];

#[test]
fn eight_tabs_share_one_stream_and_hand_over_with_web_locks() {
    let stdout = run("locks");
    for check in CHECKS.iter().chain(&["ok: the porch's tab crashed"]) {
        assert!(stdout.contains(check), "{check}\n{stdout}");
    }
}

#[test]
fn eight_tabs_hand_over_without_web_locks() {
    let stdout = run("fallback");
    for check in CHECKS.iter().chain(&["ok: the tabs have no Web Locks"]) {
        assert!(stdout.contains(check), "{check}\n{stdout}");
    }
}
