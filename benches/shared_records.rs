//! The cost of a shared record location (issue "team scale"): per durable entry, the time
//! `append` takes (the critical path: write, fsync, signed head, then a signal to the upload
//! thread) with no shared location, with `file://`, and with moto's S3 on loopback; and the
//! time from `append` returning to the line being in the store (off the critical path).
//!
//! Each shared location is measured twice. "back to back": the next entry is appended as soon
//! as the previous line is in the store, while the upload thread is still sending the signed
//! head and writing its queue file, so the two compete for the disk's journal and, on a
//! 2-core machine, with the store's own process for the cores. "settled": the next entry waits
//! until that whole round is over, as it does in an incident, where a provider call (tens to
//! hundreds of milliseconds) separates two entries: what is left is the critical path itself.
//!
//! `cargo bench --bench shared_records` (moto_server on PATH for the S3 row; skipped loudly
//! otherwise).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keyfire::clock::SystemClock;
use keyfire::record::shared::{self, Location, RecordsConfig, SharedStore, Uploader};
use keyfire::record::{RecordWriter, Signer};
use keyfire::secret::Redactor;

const ENTRIES: u64 = 200;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn p95(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[(v.len() * 95 / 100).min(v.len() - 1)]
}

#[derive(Clone, Copy, PartialEq)]
enum Pace {
    BackToBack,
    Settled,
}

fn run(label: &str, location: Option<String>, pace: Pace) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("incidents").join("inc-bench");
    let (signer, _) = Signer::generate().expect("key");
    let mut w = RecordWriter::create_signed(&dir, Redactor::new(), signer).expect("writer");
    if let Some(loc) = &location {
        let parsed = Location::parse(loc, &RecordsConfig::default()).expect("location");
        let store =
            shared::block_on(SharedStore::open(parsed, RecordsConfig::default())).expect("store");
        w.share(Uploader::start(
            store,
            "inc-bench",
            &dir,
            0,
            shared::upload::LeaseStart::Acquire(Duration::from_secs(300)),
        ));
    }
    let clock = SystemClock;
    let mut append_ms = Vec::new();
    let mut shared_ms = Vec::new();
    for n in 1..=ENTRIES {
        let kind = if n == 1 {
            "incident_opened"
        } else {
            "action_done"
        };
        let t = Instant::now();
        w.append(&clock, kind, None, serde_json::json!({ "n": n }))
            .expect("append");
        append_ms.push(t.elapsed().as_secs_f64() * 1e3);
        if location.is_some() {
            // One entry at a time, so each figure is one entry's upload.
            while w.share_status().map_or(0, |s| s.shared) < n {
                if let Some(why) = w.share_status().and_then(|s| s.stopped) {
                    panic!("{why}");
                }
                std::thread::sleep(Duration::from_micros(50));
            }
            shared_ms.push(t.elapsed().as_secs_f64() * 1e3);
            while pace == Pace::Settled && w.share_status().map_or(0, |s| s.settled) < n {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }
    let (am, ap) = (median(&mut append_ms), p95(&mut append_ms));
    if shared_ms.is_empty() {
        println!("{label:<34} append (critical path) median {am:6.2} ms  p95 {ap:6.2} ms");
    } else {
        let (sm, sp) = (median(&mut shared_ms), p95(&mut shared_ms));
        println!(
            "{label:<34} append (critical path) median {am:6.2} ms  p95 {ap:6.2} ms | in the store after median {sm:6.2} ms  p95 {sp:6.2} ms"
        );
    }
    w.finish_sharing(Duration::from_secs(30));
}

struct Moto(Child, u16);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn request(port: u16, line: &str, headers: &str, body: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let req = format!(
        "{line} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn moto() -> Option<Moto> {
    let path = std::env::var_os("PATH")?;
    let bin = std::env::split_paths(&path)
        .map(|d| d.join("moto_server"))
        .find(|p| p.is_file())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .ok()?;
    let child = Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let m = Moto(child, port);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    request(
        port,
        "PUT /bench",
        "x-amz-bucket-object-lock-enabled: true\r\n",
        "",
    );
    request(
        port,
        "PUT /bench?object-lock",
        "",
        "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>",
    );
    Some(m)
}

fn main() {
    // SAFETY: set before any other thread starts.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "bench-secret-not-a-key");
    }
    println!("{ENTRIES} durable entries, one at a time");
    run("local only", None, Pace::Settled);
    let share = tempfile::tempdir().expect("tempdir");
    for (pace, name) in [
        (Pace::BackToBack, "back to back"),
        (Pace::Settled, "settled"),
    ] {
        let dir = share.path().join(name.replace(' ', "-"));
        run(
            &format!("file:// (same disk), {name}"),
            Some(format!("file://{}", dir.display())),
            pace,
        );
    }
    match moto() {
        Some(m) => {
            for (pace, name) in [
                (Pace::BackToBack, "back to back"),
                (Pace::Settled, "settled"),
            ] {
                run(
                    &format!("S3 (moto, lock), {name}"),
                    Some(format!(
                        "s3://bench/keyfire-{}?endpoint=http://127.0.0.1:{}&region=us-east-1",
                        name.replace(' ', "-"),
                        m.1
                    )),
                    pace,
                );
            }
        }
        None => eprintln!("\n!!!!!!!! SKIPPED the S3 row: moto_server is not on PATH\n"),
    }
}
