//! The chat page's archive in a real browser: headless Chromium, driven by
//! `tests/browser/archive.mjs`, against the chat example keeping its SQLite archive in a file
//! in a temp dir. A room seeded with more than two pages of messages opens on its latest page;
//! scrolling to the top loads the older ones until the first, in order and each once; a live
//! message shows once; and a second chat on the same file (a restart) shows them all again.
//!
//! Needs what `tests/chat_browser.rs` needs (`.ci/install-browser`); without it, it fails.

#![allow(clippy::unwrap_used)]

mod browser_support;
mod chat_support;

use chat_support::{get, spawn_chat_in, Chat, TempDir};

/// The room the history is in.
const ROOM: &str = "history";

/// Messages seeded: two full pages of the page's 50 and part of a third.
const SEEDED: usize = 120;

/// Sends `text` from `name` to [`ROOM`] the way curl would, and checks it was archived
/// ("sent" comes after the write).
fn send(chat: &Chat, name: &str, text: &str) {
    let target = format!(
        "/send-message?room={ROOM}&name={name}&message={}",
        text.replace(' ', "+")
    );
    let sent = get(chat.addr, &target, &[]);
    assert_eq!(sent.status(), 200, "{}", sent.text());
    assert_eq!(sent.text(), "sent");
}

/// Runs the browser script on `chat`, expecting the room's archive to be `expected` (oldest
/// first, `[name, text]`), and returns what it printed.
fn run_page(chat: &Chat, dir: &TempDir, expected: &[[String; 2]], live: bool) -> String {
    let file = dir.db().with_file_name("expected.json");
    std::fs::write(&file, serde_json::to_string(expected).unwrap()).unwrap();
    let mut args = vec![
        format!("http://{}", chat.addr),
        ROOM.to_owned(),
        file.display().to_string(),
    ];
    if live {
        args.push("live".to_owned());
    }
    browser_support::run_driver("archive.mjs", &args)
}

#[test]
fn the_page_scrolls_back_through_the_archive_and_a_restart_keeps_it() {
    let dir = TempDir::new("archive-browser");
    let mut expected: Vec<[String; 2]> = (1..=SEEDED)
        .map(|n| {
            let name = if n % 3 == 0 { "bob" } else { "ann" };
            [
                name.to_owned(),
                format!("Message number {n} of the history"),
            ]
        })
        .collect();

    {
        let chat = spawn_chat_in(&dir);
        for [name, text] in &expected {
            send(&chat, name, text);
        }
        let stdout = run_page(&chat, &dir, &expected, true);
        for check in [
            "ok: the room opens with its latest 50 messages in order",
            "ok: the message list starts scrolled to the newest message",
            "ok: scroll 1 to the top loads older messages above, in order, with no duplicates",
            "ok: scroll 2 to the top loads older messages above, in order, with no duplicates",
            "ok: all 120 messages are shown, the first one on top",
            "ok: the page asked for 3 pages of 50",
            "ok: scrolling past the first message changes nothing and asks nothing",
            "ok: the live messages show once each, after the history",
            "ok: back in #history, its latest 50 messages end with the live ones, once each",
        ] {
            assert!(stdout.contains(check), "{check}\n{stdout}");
        }
    }

    // A restart: a new chat on the same file has the whole history, live messages included.
    for text in [
        "A live message after the history",
        "And a second one, as a barrier",
    ] {
        expected.push(["Live".to_owned(), text.to_owned()]);
    }
    let chat = spawn_chat_in(&dir);
    let stdout = run_page(&chat, &dir, &expected, false);
    for check in [
        "ok: the room opens with its latest 50 messages in order",
        "ok: all 122 messages are shown, the first one on top",
        "ok: the page asked for 3 pages of 50",
    ] {
        assert!(stdout.contains(check), "{check}\n{stdout}");
    }
}
