//! `convene_record_*` metrics: active recordings, bytes written, frames dropped, compositions.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::{Registry, Unit},
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// done, failed or skipped.
    pub result: String,
}

#[derive(Clone)]
pub struct Metrics {
    pub active: Gauge,
    pub bytes_written: Counter,
    pub frames_written: Counter,
    /// Frames not written: waiting for a keyframe, or the recorder or its disk fell behind (a full
    /// queue to the recording task or to its writer thread).
    pub frames_dropped: Counter,
    pub compositions: Family<ResultLabels, Counter>,
    pub composition_duration: Histogram,
    pub finalize_failures: Counter,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Metrics {
        let m = Metrics {
            active: Gauge::default(),
            bytes_written: Counter::default(),
            frames_written: Counter::default(),
            frames_dropped: Counter::default(),
            compositions: Family::default(),
            composition_duration: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            finalize_failures: Counter::default(),
        };
        registry.register("active", "Recordings in progress", m.active.clone());
        registry.register_with_unit(
            "written",
            "Bytes written to per-track recording files",
            Unit::Bytes,
            m.bytes_written.clone(),
        );
        registry.register(
            "frames_written",
            "Media frames written to recording files",
            m.frames_written.clone(),
        );
        registry.register(
            "frames_dropped",
            "Media frames not written (waiting for a keyframe, or the recorder or its disk fell behind)",
            m.frames_dropped.clone(),
        );
        registry.register(
            "compositions",
            "Composed files by result (done, failed, skipped)",
            m.compositions.clone(),
        );
        registry.register_with_unit(
            "composition_duration",
            "Time ffmpeg took to compose a recording",
            Unit::Seconds,
            m.composition_duration.clone(),
        );
        registry.register(
            "finalize_failures",
            "Finalize commands that failed to start, failed or timed out",
            m.finalize_failures.clone(),
        );
        m
    }

    pub fn composition(&self, result: &str) {
        self.compositions
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }
}
