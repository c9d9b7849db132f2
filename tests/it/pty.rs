//! The end-of-run summary on a terminal (issue 18): under a pseudo-terminal made by
//! `script` (util-linux), each summary line stands on its own line of the screen,
//! with nothing of the progress bar left on it.

use std::process::Command;

use crate::full_sync::create_users;
use crate::support;

/// The lines a terminal shows after `raw`: `\r` goes back to the start of the line,
/// `ESC [ 2 K` clears it, `ESC [ ... K` (to the end) clears from the cursor, other
/// escape sequences draw nothing, and any other character overwrites the one under
/// the cursor.
fn screen(raw: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line: Vec<char> = Vec::new();
    let mut cursor = 0;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                lines.push(line.iter().collect::<String>().trim_end().to_owned());
                line.clear();
                cursor = 0;
            }
            '\r' => cursor = 0,
            '\u{1b}' => {
                if chars.next_if_eq(&'[').is_none() {
                    continue;
                }
                let mut parameters = String::new();
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        if c == 'K' {
                            match parameters.as_str() {
                                "2" => line.clear(),
                                "" | "0" => line.truncate(cursor),
                                _ => {}
                            }
                        }
                        break;
                    }
                    parameters.push(c);
                }
            }
            _ => {
                if cursor < line.len() {
                    line[cursor] = c;
                } else {
                    line.resize(cursor, ' ');
                    line.push(c);
                }
                cursor += 1;
            }
        }
    }
    if !line.is_empty() {
        lines.push(line.iter().collect());
    }
    lines
}

#[test]
fn summary_lines_stand_alone_on_a_terminal() {
    let db = support::source_db();
    create_users(&db, 5);
    let target = support::target_file();
    let command = format!("{} sync --mapping users", env!("CARGO_BIN_EXE_data-sync"));
    let output = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("DATA_SYNC_SOURCE", db.url())
        .env("DATA_SYNC_TARGET", &target.path)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    assert!(output.status.success(), "{output:?}");
    let raw = String::from_utf8(output.stdout).unwrap();
    // The bar was drawn: this is a terminal.
    assert!(raw.contains("users (full)"), "{raw:?}");
    let screen = screen(&raw);
    let [.., first, main, profile] = screen.as_slice() else {
        panic!("{screen:?}");
    };
    // `users: full sync, 5 rows read in 0.12 s (41 rows/s)`: all but the time.
    let (head, time) = first
        .split_once(" rows read in ")
        .unwrap_or_else(|| panic!("{screen:?}"));
    assert_eq!(head, "users: full sync, 5");
    let (seconds, rate) = time
        .split_once(" s (")
        .unwrap_or_else(|| panic!("{screen:?}"));
    assert!(seconds.parse::<f64>().is_ok(), "{first}");
    let rate = rate
        .strip_suffix(" rows/s)")
        .unwrap_or_else(|| panic!("{first}"));
    assert!(rate.replace(',', "").parse::<u64>().is_ok(), "{first}");
    assert_eq!(main, "  user_main     5 written");
    assert_eq!(profile, "  user_profile  5 written");
    // Nothing after them, and no bar left on any line but those it drew on.
    assert!(
        raw.ends_with("\r\n  user_profile  5 written\r\n"),
        "{raw:?}"
    );
    for line in &screen[..screen.len() - 3] {
        assert!(
            line.is_empty() || line.contains("users (full)"),
            "{screen:?}"
        );
    }
}
