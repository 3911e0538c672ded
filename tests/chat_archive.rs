//! The chat's SQLite archive, against a real database file in a temp dir: every message is
//! written (off the loop) before "sent", `/rooms/NAME/messages` pages it newest first, a
//! restart keeps it, and bad `before`/`limit` answer 400 naming the parameter.

#![allow(clippy::unwrap_used)]

mod chat_support;

use chat_support::{get, spawn_chat, spawn_chat_in, subscribe, Chat, TempDir};
use serde_json::{json, Value};

fn send(chat: &Chat, room: &str, message: &str) {
    let sent = get(
        chat.addr,
        &format!("/send-message?room={room}&name=ann&message={message}"),
        &[],
    );
    assert_eq!(sent.status(), 200, "{}", sent.text());
    assert_eq!(sent.text(), "sent");
}

/// The messages of a page as `(id, message)`, and the whole JSON.
fn page(chat: &Chat, target: &str) -> (Vec<(i64, String)>, Value) {
    let response = get(chat.addr, target, &[]);
    assert_eq!(response.status(), 200, "{target}: {}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    let value: Value = serde_json::from_str(response.text()).unwrap();
    let messages = value["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_i64().unwrap(),
                m["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (messages, value)
}

fn texts(messages: &[(i64, String)]) -> Vec<&str> {
    messages.iter().map(|(_, m)| m.as_str()).collect()
}

#[test]
fn messages_are_archived_and_paged_newest_first() {
    let dir = TempDir::new("archive-pages");
    let chat = spawn_chat_in(&dir);
    let mut live = subscribe(chat.addr, "/source?room=a");
    for n in 1..=5 {
        send(&chat, "a", &format!("message+{n}"));
    }
    send(&chat, "b", "only+in+b");
    // Live delivery is as before.
    assert_eq!(
        live.next_json(),
        json!({"room": "a", "name": "ann", "message": "message 1"})
    );

    // "sent" came after the write: the archive has every message at once.
    let (all, value) = page(&chat, "/rooms/a/messages");
    assert_eq!(
        texts(&all),
        [
            "message 5",
            "message 4",
            "message 3",
            "message 2",
            "message 1"
        ]
    );
    assert_eq!(value["room"], "a");
    assert_eq!(value["messages"][0]["name"], "ann");
    // The live event's id, so a page that saw it live shows it once.
    assert!(value["messages"][0]["event_id"].is_string(), "{value}");

    let (first, _) = page(&chat, "/rooms/a/messages?limit=2");
    assert_eq!(texts(&first), ["message 5", "message 4"]);
    let before = first[1].0;
    let (second, _) = page(&chat, &format!("/rooms/a/messages?limit=2&before={before}"));
    assert_eq!(texts(&second), ["message 3", "message 2"]);
    let before = second[1].0;
    let (last, _) = page(&chat, &format!("/rooms/a/messages?limit=2&before={before}"));
    assert_eq!(texts(&last), ["message 1"]);
    let (none, _) = page(&chat, &format!("/rooms/a/messages?before={}", last[0].0));
    assert!(none.is_empty());

    let (b, _) = page(&chat, "/rooms/b/messages");
    assert_eq!(texts(&b), ["only in b"]);
    let (empty, _) = page(&chat, "/rooms/nobody/messages?limit=200");
    assert!(empty.is_empty());
}

#[test]
fn a_restart_keeps_the_archive() {
    let dir = TempDir::new("archive-restart");
    let first_id = {
        let chat = spawn_chat_in(&dir);
        send(&chat, "r", "before+restart");
        let (messages, _) = page(&chat, "/rooms/r/messages");
        messages[0].0
    };
    let chat = spawn_chat_in(&dir);
    send(&chat, "r", "after+restart");
    let (messages, _) = page(&chat, "/rooms/r/messages");
    assert_eq!(texts(&messages), ["after restart", "before restart"]);
    assert!(messages[0].0 > first_id);
    assert_eq!(messages[1].0, first_id);
}

#[test]
fn bad_paging_parameters_answer_400_naming_the_parameter() {
    let dir = TempDir::new("archive-bad");
    let chat = spawn_chat_in(&dir);
    send(&chat, "x", "hello+there");
    for (target, parameter) in [
        ("/rooms/x/messages?before=0", "before"),
        ("/rooms/x/messages?before=-3", "before"),
        ("/rooms/x/messages?before=x", "before"),
        ("/rooms/x/messages?before=", "before"),
        ("/rooms/x/messages?limit=0", "limit"),
        ("/rooms/x/messages?limit=201", "limit"),
        ("/rooms/x/messages?limit=ten", "limit"),
        ("/rooms/x/messages?limit=-1", "limit"),
        ("/rooms/seventeen-chars-x/messages", "room"),
    ] {
        let response = get(chat.addr, target, &[]);
        assert_eq!(response.status(), 400, "{target}: {}", response.text());
        assert!(
            response
                .text()
                .contains(&format!("parameter `{parameter}`")),
            "{target}: {}",
            response.text()
        );
    }
    // Still serving, and the bounds themselves are fine.
    let (messages, _) = page(
        &chat,
        "/rooms/x/messages?before=9223372036854775807&limit=200",
    );
    assert_eq!(texts(&messages), ["hello there"]);
    let (messages, _) = page(&chat, "/rooms/x/messages?limit=1");
    assert_eq!(messages.len(), 1);
}

#[test]
fn without_an_archive_paging_is_404_and_sending_works() {
    let chat = spawn_chat();
    send(&chat, "x", "hello+there");
    let response = get(chat.addr, "/rooms/x/messages", &[]);
    assert_eq!(response.status(), 404, "{}", response.text());
    assert!(
        response.text().contains("--no-archive"),
        "{}",
        response.text()
    );
}
