//! The plain copies of secrets that keyfire makes are wiped before their memory is given
//! back. A global allocator looks at every block freed (or moved by a reallocation) while a
//! scenario runs and counts the blocks that still hold a canary value, or 16 bytes of it: a
//! copy that was freed without being wiped. It is its own test binary because the allocator is process-wide.
//!
//! Only keyfire's own types are exercised here: the buffers of the HTTP stack and the
//! terminal library are outside its control.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use keyfire::secret::{Redactor, Secret, SecretMap};

/// A value no scenario prints or logs; long enough that it cannot occur by chance.
const CANARY: &str = "sk-proj-CANARYzeroizeQ7v2Lm9Xr4Tp8Wd3Hs6Kb1";

static ARMED: AtomicBool = AtomicBool::new(false);
static UNWIPED: AtomicUsize = AtomicUsize::new(0);

struct Watch;

/// A piece of the canary this long is a copy of it: a growing buffer leaves prefixes behind,
/// not the whole value.
const PIECE: usize = 16;

fn holds_canary(ptr: *const u8, len: usize) -> bool {
    let canary = CANARY.as_bytes();
    if len < PIECE {
        return false;
    }
    // SAFETY: the allocator hands out `len` readable bytes at `ptr`, and they are ours until
    // the call below gives them back.
    let block = unsafe { std::slice::from_raw_parts(ptr, len) };
    block
        .windows(PIECE)
        .any(|w| canary.windows(PIECE).any(|piece| piece == w))
}

fn check(ptr: *const u8, len: usize) {
    if ARMED.load(Ordering::Relaxed) && holds_canary(ptr, len) {
        UNWIPED.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call forwards to the system allocator; the checks only read the block
// before it is released.
unsafe impl GlobalAlloc for Watch {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        check(ptr, layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A growing buffer is copied to a new block and the old one freed as it is: the
        // classic way a "zeroizing" string leaves copies behind.
        check(ptr, layout.size());
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Watch = Watch;

/// One scenario at a time: the counter is process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `scenario` with the allocator watching and returns how many blocks holding the
/// canary were freed unwiped.
fn unwiped_frees(scenario: impl FnOnce()) -> usize {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    UNWIPED.store(0, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    scenario();
    ARMED.store(false, Ordering::SeqCst);
    UNWIPED.load(Ordering::SeqCst)
}

/// The canary as a `Secret`, built without a plain intermediate copy on the heap.
fn canary() -> Secret {
    Secret::new(CANARY)
}

#[test]
fn the_watch_sees_a_plain_copy_freed() {
    // The check itself can fail: a plain String holding the canary is caught.
    let n = unwiped_frees(|| {
        let plain = String::from(CANARY);
        drop(std::hint::black_box(plain));
    });
    assert_eq!(n, 1);
}

#[test]
fn a_secret_and_its_clones_are_wiped() {
    let n = unwiped_frees(|| {
        let s = canary();
        let t = s.clone();
        let _ = format!("{s:?} {t:?}");
        assert_eq!(t.expose(), CANARY);
        drop(s);
        drop(t);
    });
    assert_eq!(n, 0);
}

#[test]
fn a_redactor_wipes_what_it_learned_when_it_goes() {
    let n = unwiped_frees(|| {
        let r = Redactor::new();
        r.learn(&canary());
        // A second value rebuilds the finder: the first one's copies must not linger.
        r.learn(&Secret::new("sk-proj-CANARYsecondValue0000000000000000"));
        let mut text = zeroize::Zeroizing::new(String::with_capacity(256));
        text.push_str("error: the key ");
        text.push_str(CANARY);
        text.push_str(" was refused");
        let clean = r.scrub(&text);
        assert!(!clean.contains(CANARY), "{clean}");
        drop(r);
    });
    assert_eq!(n, 0);
}

#[test]
fn a_store_answer_is_wiped() {
    let n = unwiped_frees(|| {
        let mut body = zeroize::Zeroizing::new(String::with_capacity(256));
        body.push_str(r#"{"value":""#);
        body.push_str(CANARY);
        body.push_str(r#"","model":"gpt-test"}"#);
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&body).expect("json");
        let map = SecretMap(map);
        assert_eq!(map.get_str("value"), Some(CANARY));
        drop(map);
    });
    assert_eq!(n, 0);
}

#[cfg(feature = "tui")]
#[test]
fn a_value_typed_into_the_console_is_wiped() {
    use keyfire::tui::action::{Action, Prompt, PromptKind, Reply};
    use keyfire::tui::dialogs::prompt::{PromptDialog, PromptOutcome};

    let n = unwiped_frees(|| {
        let mut dialog = PromptDialog::new(Prompt {
            id: 1,
            kind: PromptKind::Paste {
                key: "support-llm".into(),
                instructions: Vec::new(),
            },
        });
        // Typed one character at a time, as a terminal delivers a paste.
        for c in CANARY.chars() {
            dialog.update(&Action::Char(c));
        }
        let outcome = dialog.update(&Action::Submit);
        let PromptOutcome::Answered {
            reply: Reply::Paste(Some(secret)),
            ..
        } = outcome
        else {
            panic!("the paste is answered: {outcome:?}");
        };
        assert_eq!(secret.expose(), CANARY);
        drop(secret);
        drop(dialog);
    });
    assert_eq!(n, 0);
}
