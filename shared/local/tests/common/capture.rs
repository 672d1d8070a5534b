//! Everything a test binary logs, kept in memory: the `tracing` subscriber's lines and the `log`
//! facade's records (what dependencies such as reqwest log through), for tests that look for ids
//! in the lines or for secrets that must not be there.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;

/// The captured text, shared by every writer the subscriber makes.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Records of the `log` facade, into the same buffer.
struct LogBridge(Capture);

impl log::Log for LogBridge {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = format!("[log] {} {}: {}\n", record.level(), record.target(), record.args());
        let _ = self.0.clone().write_all(line.as_bytes());
    }
    fn flush(&self) {}
}

/// Capture every level of both, as the test binary's only subscriber and logger. `spans`: also a
/// line for each span's creation, entry, exit and close (with its fields).
pub fn install(spans: bool) -> Capture {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(if spans { FmtSpan::FULL } else { FmtSpan::NONE })
        .with_ansi(false)
        .with_target(true)
        .with_writer(capture.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this test binary");
    log::set_logger(Box::leak(Box::new(LogBridge(capture.clone())))).expect("the only logger of this test binary");
    log::set_max_level(log::LevelFilter::Trace);
    capture
}
