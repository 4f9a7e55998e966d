//! Headless status lines: one per record entry, written as soon as the entry is durable.

use std::io::Write;

use crate::describe::describe_event;
use crate::record::Entry;
use crate::runbook::Sink;

pub struct LineSink<W: Write + Send> {
    out: W,
}

impl<W: Write + Send> LineSink<W> {
    pub fn new(out: W) -> Self {
        Self { out }
    }
}

impl<W: Write + Send> Sink for LineSink<W> {
    fn emit(&mut self, e: &Entry) {
        let _ = writeln!(self.out, "{}", status_line(e));
        let _ = self.out.flush();
    }
}

/// One entry as a status line: time, key, step and what happened.
pub(crate) fn status_line(e: &Entry) -> String {
    let time = e.ts.get(11..19).unwrap_or(&e.ts);
    let event = crate::record::Event::of(e);
    let key = event.key().unwrap_or("");
    let step = e.step.as_deref().unwrap_or("");
    format!("{time}  {key:<24} {step:<10} {}", describe_event(e, &event))
}
