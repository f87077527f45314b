//! Bridges raft-rs's slog logging into tracing, so the store logs through one pipeline.

use slog::{Drain, Level, OwnedKVList, Record, KV};

struct TracingDrain;

struct KvCollect(String);

impl slog::Serializer for KvCollect {
    fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments) -> slog::Result {
        use std::fmt::Write;
        let _ = write!(self.0, " {key}={val}");
        Ok(())
    }
}

impl Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), slog::Never> {
        let mut kv = KvCollect(String::new());
        let _ = record.kv().serialize(record, &mut kv);
        let _ = values.serialize(record, &mut kv);
        let msg = format!("{}{}", record.msg(), kv.0);
        match record.level() {
            Level::Critical | Level::Error => tracing::error!(target: "raft", "{msg}"),
            Level::Warning => tracing::warn!(target: "raft", "{msg}"),
            Level::Info => tracing::debug!(target: "raft", "{msg}"),
            Level::Debug | Level::Trace => tracing::trace!(target: "raft", "{msg}"),
        }
        Ok(())
    }
}

/// A slog logger for raft-rs that writes through tracing.
pub fn raft_logger(member: &str) -> slog::Logger {
    slog::Logger::root(
        TracingDrain.fuse(),
        slog::o!("member" => member.to_string()),
    )
}
