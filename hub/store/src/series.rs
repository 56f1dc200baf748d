//! The `tick_series` table: every tick of a target, compactly, for charts and replay.
//!
//! A full decision row (reason chain, hooks, evaluation) is written only when something
//! changes; each tick adds a [`TickPoint`] here instead. Points are packed into chunks of
//! consecutive ticks, one row per chunk: the open chunk is rewritten in place as it grows
//! (so nothing is lost in a crash and disk use is the packed size), then closed when full.
//! Inside a chunk each point stores its time as the gap to the previous one, and its metrics,
//! outcome and replica counts only where they differ from the previous point, so a stable
//! target costs a few bytes per tick.

use crate::backend::{Conn, on_db, values};
use scalehub_core::calc::MetricUsage;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError, query_err};
use crate::rows::TargetKey;
use crate::store::Store;
use crate::writer::Write;

/// Points per chunk: at a 15 s interval one chunk holds 15 minutes.
pub const CHUNK_POINTS: usize = 60;

/// Largest number of points one read returns.
pub const MAX_POINTS: u32 = 20_000;

/// The format of `points`; bumped if the encoding ever changes.
const FORMAT: u8 = 3;

/// One metric value as a tick recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesMetric {
    /// The resource (pod or workload) or metric name.
    pub resource: String,
    /// The value as the metric stage produced it.
    pub value: String,
}

/// One tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TickPoint {
    /// When the tick ran, unix ms.
    pub time: i64,
    /// Replicas the workload had.
    pub current_replicas: Option<i32>,
    /// What the evaluation asked for.
    pub raw_evaluation: Option<i32>,
    /// Replicas after policy.
    pub final_replicas: Option<i32>,
    /// The evaluation combined with the predictive models' predictions, for a predictive target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted: Option<i32>,
    /// The built-in calculation's usage ratio in millionths (1.0 is 1,000,000), which a replay
    /// needs to apply another tolerance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio_ppm: Option<i64>,
    /// What the tick observed of each Kubernetes metric (usage, requests, pods), which a replay
    /// needs to run another built-in calculation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usage: Vec<MetricUsage>,
    /// The decision's outcome (`unchanged`, `held`, `scaled`, `error`, ...).
    pub outcome: String,
    /// The metric values.
    pub metrics: Vec<SeriesMetric>,
}

/// A chunk of consecutive ticks of one target, packed, as the hub writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesChunkRow {
    /// The target.
    pub key: TargetKey,
    /// The packed points.
    pub chunk: PackedChunk,
}

/// Packed points of one chunk.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PackedChunk {
    /// Time of the first point; names the chunk.
    pub start: i64,
    /// Time of the last point.
    pub end: i64,
    /// Points in the chunk.
    pub ticks: usize,
    /// The format byte and the packed points.
    pub bytes: Vec<u8>,
}

/// A target's open chunk, appended to point by point: packing a point costs only that point.
#[derive(Debug, Default)]
pub struct SeriesWriter {
    chunk: PackedChunk,
    last: Option<TickPoint>,
}

impl SeriesWriter {
    /// Appends a tick, starting a new chunk when the open one is full (or when time went
    /// backwards), and returns the open chunk as it now is.
    pub fn push(&mut self, point: TickPoint) -> Result<&PackedChunk> {
        let full = self.chunk.ticks >= CHUNK_POINTS;
        let backwards = self.last.as_ref().is_some_and(|l| point.time < l.time);
        if full || backwards || self.last.is_none() {
            self.chunk = PackedChunk { start: point.time, end: point.time, ticks: 0, bytes: vec![FORMAT] };
            self.last = None;
        }
        let packed = pack(&point, self.last.as_ref(), self.chunk.start);
        postcard::to_io(&packed, &mut self.chunk.bytes)
            .map_err(|e| StoreError::Encode { what: "tick_series.points", detail: e.to_string() })?;
        self.chunk.ticks += 1;
        self.chunk.end = point.time;
        self.last = Some(point);
        Ok(&self.chunk)
    }
}

fn pack(p: &TickPoint, previous: Option<&TickPoint>, start: i64) -> Packed {
    let last_time = previous.map_or(start, |q| q.time);
    Packed {
        gap_ms: u64::try_from(p.time - last_time).unwrap_or(0),
        current: Change::of(&p.current_replicas, previous.map(|q| &q.current_replicas)),
        raw: Change::of(&p.raw_evaluation, previous.map(|q| &q.raw_evaluation)),
        desired: Change::of(&p.final_replicas, previous.map(|q| &q.final_replicas)),
        outcome: Change::of(&p.outcome, previous.map(|q| &q.outcome)),
        metrics: Change::of(&Metrics::of(p), previous.map(Metrics::of).as_ref()),
        extra: Change::of(&Extra::of(p), previous.map(Extra::of).as_ref()),
    }
}

/// A point's metric values as stored: as they are, or — when they are the summaries of the
/// point's observations, as for every built-in target — only their names, the values being
/// made again from the observations. Under a load that changes every tick the values then
/// cost nothing beyond the observations.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
enum Metrics {
    Literal(Vec<SeriesMetric>),
    FromUsage(Vec<String>),
}

impl Metrics {
    fn of(p: &TickPoint) -> Metrics {
        let derived = !p.usage.is_empty()
            && p.metrics.len() == p.usage.len()
            && p.metrics.iter().zip(&p.usage).all(|(m, u)| m.value == u.observed.summary());
        match derived {
            true => Metrics::FromUsage(p.metrics.iter().map(|m| m.resource.clone()).collect()),
            false => Metrics::Literal(p.metrics.clone()),
        }
    }

    fn values(self, usage: &[MetricUsage]) -> Option<Vec<SeriesMetric>> {
        match self {
            Metrics::Literal(metrics) => Some(metrics),
            Metrics::FromUsage(names) if names.len() == usage.len() => Some(
                names
                    .into_iter()
                    .zip(usage)
                    .map(|(resource, u)| SeriesMetric { resource, value: u.observed.summary() })
                    .collect(),
            ),
            Metrics::FromUsage(_) => None,
        }
    }
}

/// An older format's metric values.
fn literal(metrics: Change<Vec<SeriesMetric>>) -> Change<Metrics> {
    match metrics {
        Change::Same => Change::Same,
        Change::New(m) => Change::New(Metrics::Literal(m)),
    }
}

/// The fields most targets leave empty, packed as one: a stable tick costs one byte for all.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
struct Extra {
    predicted: Option<i32>,
    ratio_ppm: Option<i64>,
    usage: Vec<MetricUsage>,
}

impl Extra {
    fn none() -> Extra {
        Extra { predicted: None, ratio_ppm: None, usage: Vec::new() }
    }

    fn of(p: &TickPoint) -> Extra {
        Extra { predicted: p.predicted, ratio_ppm: p.ratio_ppm, usage: p.usage.clone() }
    }
}

/// A point as stored: a gap and the fields that changed.
#[derive(Serialize, Deserialize)]
struct Packed {
    gap_ms: u64,
    current: Change<Option<i32>>,
    raw: Change<Option<i32>>,
    desired: Change<Option<i32>>,
    outcome: Change<String>,
    metrics: Change<Metrics>,
    /// The predicted count, the usage ratio and the metrics' observations, in one field.
    extra: Change<Extra>,
}

/// A point of a format-2 chunk (before the observations were kept).
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct PackedV2 {
    gap_ms: u64,
    current: Change<Option<i32>>,
    raw: Change<Option<i32>>,
    desired: Change<Option<i32>>,
    outcome: Change<String>,
    metrics: Change<Vec<SeriesMetric>>,
    extra: Change<(Option<i32>, Option<i64>)>,
}

impl From<PackedV2> for Packed {
    fn from(p: PackedV2) -> Self {
        let PackedV2 { gap_ms, current, raw, desired, outcome, metrics, extra } = p;
        let extra = match extra {
            Change::Same => Change::Same,
            Change::New((predicted, ratio_ppm)) => Change::New(Extra { predicted, ratio_ppm, usage: Vec::new() }),
        };
        Packed { gap_ms, current, raw, desired, outcome, metrics: literal(metrics), extra }
    }
}

/// A point of a format-1 chunk (before the predicted count was kept).
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct PackedV1 {
    gap_ms: u64,
    current: Change<Option<i32>>,
    raw: Change<Option<i32>>,
    desired: Change<Option<i32>>,
    outcome: Change<String>,
    metrics: Change<Vec<SeriesMetric>>,
}

impl From<PackedV1> for Packed {
    fn from(p: PackedV1) -> Self {
        let PackedV1 { gap_ms, current, raw, desired, outcome, metrics } = p;
        Packed { gap_ms, current, raw, desired, outcome, metrics: literal(metrics), extra: Change::New(Extra::none()) }
    }
}

#[derive(Serialize, Deserialize)]
enum Change<T> {
    Same,
    New(T),
}

impl<T: PartialEq + Clone> Change<T> {
    fn of(new: &T, previous: Option<&T>) -> Change<T> {
        match previous {
            Some(p) if p == new => Change::Same,
            _ => Change::New(new.clone()),
        }
    }

    fn resolve(self, previous: Option<&T>) -> Option<T>
    where
        T: Clone,
    {
        match self {
            Change::New(v) => Some(v),
            Change::Same => previous.cloned(),
        }
    }
}

/// Packs points (oldest first) into one chunk.
pub fn encode(points: &[TickPoint]) -> Result<PackedChunk> {
    let mut writer = SeriesWriter::default();
    let mut chunk = PackedChunk::default();
    for p in points {
        chunk = writer.push(p.clone())?.clone();
    }
    Ok(chunk)
}

/// Unpacks a chunk that starts at `start`.
pub fn decode(start: i64, bytes: &[u8]) -> Result<Vec<TickPoint>> {
    let bad = |detail: String| StoreError::Encode { what: "tick_series.points", detail };
    let (format, body) = bytes.split_first().ok_or_else(|| bad("empty chunk".into()))?;
    if !(1..=FORMAT).contains(format) {
        return Err(bad(format!("unknown format {format}")));
    }
    let mut out: Vec<TickPoint> = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (p, tail): (Packed, &[u8]) = match format {
            1 => {
                let (p, tail): (PackedV1, &[u8]) = postcard::take_from_bytes(rest).map_err(|e| bad(e.to_string()))?;
                (p.into(), tail)
            }
            2 => {
                let (p, tail): (PackedV2, &[u8]) = postcard::take_from_bytes(rest).map_err(|e| bad(e.to_string()))?;
                (p.into(), tail)
            }
            _ => postcard::take_from_bytes(rest).map_err(|e| bad(e.to_string()))?,
        };
        rest = tail;
        let previous = out.last();
        let time = previous.map_or(start, |q| q.time).saturating_add(i64::try_from(p.gap_ms).unwrap_or(i64::MAX));
        let missing = || bad("a chunk's first point must carry every field".into());
        let Extra { predicted, ratio_ppm, usage } =
            p.extra.resolve(previous.map(Extra::of).as_ref()).ok_or_else(missing)?;
        let metrics = p.metrics.resolve(previous.map(Metrics::of).as_ref()).ok_or_else(missing)?;
        let metrics = metrics.values(&usage).ok_or_else(|| bad("metric names without as many observations".into()))?;
        let point = TickPoint {
            time,
            current_replicas: p.current.resolve(previous.map(|q| &q.current_replicas)).ok_or_else(missing)?,
            raw_evaluation: p.raw.resolve(previous.map(|q| &q.raw_evaluation)).ok_or_else(missing)?,
            final_replicas: p.desired.resolve(previous.map(|q| &q.final_replicas)).ok_or_else(missing)?,
            outcome: p.outcome.resolve(previous.map(|q| &q.outcome)).ok_or_else(missing)?,
            metrics,
            predicted,
            ratio_ppm,
            usage,
        };
        out.push(point);
    }
    Ok(out)
}

/// Rows per multi-row statement (five variables each).
const ROWS_PER_STATEMENT: usize = 200;

/// Writes (or rewrites) many targets' open chunks, one statement per [`ROWS_PER_STATEMENT`] rows.
pub(crate) async fn upsert_many(conn: &mut Conn, rows: &[(i64, &SeriesChunkRow)]) -> Result<()> {
    let rows: Vec<&(i64, &SeriesChunkRow)> = rows.iter().filter(|(_, r)| r.chunk.ticks > 0).collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let values = values(chunk.len(), 5, 1);
        let sql = format!(
            "INSERT INTO tick_series (target_id, start_time, end_time, ticks, points) VALUES {values} \
             ON CONFLICT (target_id, start_time) DO UPDATE SET \
                 end_time = excluded.end_time, ticks = excluded.ticks, points = excluded.points"
        );
        on_db!(&mut *conn, db => {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (target, row) in chunk {
                let c = &row.chunk;
                query = query.bind(*target).bind(c.start).bind(c.end).bind(c.ticks as i64).bind(&c.bytes);
            }
            query.execute(db).await.map(|_| ())
        })
        .map_err(query_err("write tick series"))?;
    }
    Ok(())
}

/// Deletes up to `limit` chunks that ended before `older_than`.
pub(crate) async fn prune_batch(conn: &mut Conn, older_than: i64, limit: i64) -> Result<i64> {
    let deleted = on_db!(conn, c => sqlx::query(
        "DELETE FROM tick_series WHERE (target_id, start_time) IN \
             (SELECT target_id, start_time FROM tick_series WHERE end_time < $1 ORDER BY end_time LIMIT $2)",
    )
    .bind(older_than)
    .bind(limit)
    .execute(c)
    .await
    .map(|done| done.rows_affected()))
    .map_err(query_err("prune tick series"))?;
    Ok(deleted as i64)
}

impl Store {
    /// Queues one tick: its decision row (only when something changed), the policy state it
    /// produced and the target's open series chunk, committed together. Returns once queued.
    pub async fn record_tick(
        &self,
        decision: Option<crate::rows::DecisionRow>,
        policy: Option<crate::rows::PolicyStateRow>,
        series: Option<SeriesChunkRow>,
    ) -> Result<()> {
        let op = Write::Tick {
            decision: decision.map(Box::new),
            policy: policy.map(Box::new),
            series: series.map(Box::new),
        };
        self.enqueue(op).await
    }

    /// A target's ticks with `from <= time < to`, oldest first, at most `limit`
    /// (capped at [`MAX_POINTS`]); when more match, the newest are kept.
    pub async fn ticks(&self, key: &TargetKey, from: i64, to: i64, limit: u32) -> Result<Vec<TickPoint>> {
        let limit = limit.clamp(1, MAX_POINTS) as usize;
        let chunks: Vec<(i64, Vec<u8>)> = on_db!(self.pool(), pool => sqlx::query_as(
            "SELECT s.start_time, s.points FROM tick_series s \
             WHERE s.target_id = (SELECT id FROM targets WHERE namespace = $1 AND kind = $2 AND name = $3) \
               AND s.end_time >= $4 AND s.start_time < $5 \
             ORDER BY s.start_time DESC",
        )
        .bind(&key.namespace)
        .bind(key.kind.as_str())
        .bind(&key.name)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await)
        .map_err(query_err("read tick series"))?;
        // Newest chunks first, so a read that hits the limit keeps the newest points.
        let mut newest_first: Vec<TickPoint> = Vec::new();
        for (start, bytes) in chunks {
            let points = decode(start, &bytes)?;
            newest_first.extend(points.into_iter().rev().filter(|p| p.time >= from && p.time < to));
            if newest_first.len() >= limit {
                break;
            }
        }
        newest_first.truncate(limit);
        newest_first.reverse();
        Ok(newest_first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(time: i64, current: i32, outcome: &str, value: &str) -> TickPoint {
        TickPoint {
            time,
            current_replicas: Some(current),
            raw_evaluation: Some(current),
            final_replicas: Some(current),
            outcome: outcome.into(),
            metrics: vec![SeriesMetric { resource: "cpu".into(), value: value.into() }],
            predicted: None,
            ratio_ppm: None,
            usage: Vec::new(),
        }
    }

    #[test]
    fn predicted_counts_round_trip_and_format_1_chunks_still_read() {
        let points = vec![
            TickPoint { predicted: Some(5), ratio_ppm: Some(1_250_000), ..point(1_000, 2, "scaled", "1") },
            TickPoint { predicted: Some(5), ..point(2_000, 5, "unchanged", "1") },
            TickPoint { predicted: None, ..point(3_000, 5, "unchanged", "1") },
        ];
        let chunk = encode(&points).unwrap();
        assert_eq!(chunk.bytes[0], FORMAT);
        assert_eq!(decode(chunk.start, &chunk.bytes).unwrap(), points);
        // A chunk written before the field existed: format 1, the same fields minus predicted.
        let mut old = vec![1u8];
        for (i, p) in points.iter().enumerate() {
            let previous = i.checked_sub(1).map(|j| &points[j]);
            let v1 = PackedV1 {
                gap_ms: u64::try_from(p.time - previous.map_or(1_000, |q| q.time)).unwrap(),
                current: Change::of(&p.current_replicas, previous.map(|q| &q.current_replicas)),
                raw: Change::of(&p.raw_evaluation, previous.map(|q| &q.raw_evaluation)),
                desired: Change::of(&p.final_replicas, previous.map(|q| &q.final_replicas)),
                outcome: Change::of(&p.outcome, previous.map(|q| &q.outcome)),
                metrics: Change::of(&p.metrics, previous.map(|q| &q.metrics)),
            };
            postcard::to_io(&v1, &mut old).unwrap();
        }
        let read = decode(1_000, &old).unwrap();
        assert_eq!(read.len(), 3);
        assert!(read.iter().all(|p| p.predicted.is_none() && p.ratio_ppm.is_none()));
        assert_eq!(read[1].current_replicas, Some(5));
    }

    #[test]
    fn observations_round_trip_cost_nothing_while_stable_and_format_2_chunks_still_read() {
        use scalehub_core::calc::{Observed, PodUsage};
        let cpu = |usage: i64| MetricUsage {
            key: "cpu".into(),
            observed: Observed::Pods(PodUsage { ready: 2, usage, requests: 1000, ..PodUsage::default() }),
        };
        let points = vec![
            TickPoint { usage: vec![cpu(600)], ..point(1_000, 2, "unchanged", "1") },
            TickPoint { usage: vec![cpu(600)], ..point(2_000, 2, "unchanged", "1") },
            TickPoint { usage: vec![cpu(900)], ..point(3_000, 2, "unchanged", "1") },
        ];
        let chunk = encode(&points).unwrap();
        assert_eq!(decode(chunk.start, &chunk.bytes).unwrap(), points);
        let two = encode(&points[..2]).unwrap().bytes.len() - encode(&points[..1]).unwrap().bytes.len();
        assert!(two <= 8, "a stable tick with observations costs {two} bytes");
        // A chunk written before observations were kept: format 2.
        let mut old = vec![2u8];
        for (i, p) in points.iter().enumerate() {
            let previous = i.checked_sub(1).map(|j| &points[j]);
            let v2 = PackedV2 {
                gap_ms: u64::try_from(p.time - previous.map_or(1_000, |q| q.time)).unwrap(),
                current: Change::of(&p.current_replicas, previous.map(|q| &q.current_replicas)),
                raw: Change::of(&p.raw_evaluation, previous.map(|q| &q.raw_evaluation)),
                desired: Change::of(&p.final_replicas, previous.map(|q| &q.final_replicas)),
                outcome: Change::of(&p.outcome, previous.map(|q| &q.outcome)),
                metrics: Change::of(&p.metrics, previous.map(|q| &q.metrics)),
                extra: Change::of(&(Some(4), None), previous.map(|_| (Some(4), None)).as_ref()),
            };
            postcard::to_io(&v2, &mut old).unwrap();
        }
        let read = decode(1_000, &old).unwrap();
        assert_eq!(read.len(), 3);
        assert!(read.iter().all(|p| p.predicted == Some(4) && p.usage.is_empty()), "{read:?}");
    }

    #[test]
    fn a_built_in_targets_values_are_made_again_from_its_observations() {
        use scalehub_core::calc::{Observed, PodUsage};
        // A load that changes every tick: the values are the observations' summaries, so only
        // the observations change; a metric hook's own value is kept as it is.
        let tick = |i: i64, hooked: bool| {
            let usage = 1100 + (i * 37) % 200;
            let observed = Observed::Pods(PodUsage { ready: 2, usage, requests: 1000, ..PodUsage::default() });
            let value = if hooked { format!("{}", usage / 10) } else { observed.summary() };
            TickPoint {
                usage: vec![MetricUsage { key: "cpu".into(), observed }],
                metrics: vec![SeriesMetric { resource: "cpu".into(), value }],
                ..point(i * 15_000, 2, "unchanged", "")
            }
        };
        let built_in: Vec<TickPoint> = (0..60).map(|i| tick(i, false)).collect();
        assert_eq!(built_in[0].metrics[0].value, "1100m over 2 ready pods");
        let chunk = encode(&built_in).unwrap();
        assert_eq!(decode(chunk.start, &chunk.bytes).unwrap(), built_in);
        let per_tick = chunk.bytes.len() as f64 / 60.0;
        // The observations (~18 bytes) and the gap: within the 200 KB per target-day goal at
        // a 15 s interval (5,760 ticks) even for a load that never repeats.
        assert!(per_tick <= 30.0, "{per_tick} bytes per tick of a changing built-in load");
        let hooked: Vec<TickPoint> = (0..60).map(|i| tick(i, true)).collect();
        let chunk = encode(&hooked).unwrap();
        assert_eq!(decode(chunk.start, &chunk.bytes).unwrap(), hooked);
    }

    #[test]
    fn points_round_trip_through_the_packed_form() {
        let points = vec![
            point(1_000, 2, "unchanged", "600m"),
            point(16_000, 2, "unchanged", "600m"),
            point(31_000, 3, "scaled", "900m"),
            TickPoint { metrics: vec![], raw_evaluation: None, final_replicas: None, ..point(46_005, 3, "error", "") },
        ];
        let chunk = encode(&points).unwrap();
        assert_eq!((chunk.start, chunk.end, chunk.ticks), (1_000, 46_005, 4));
        assert_eq!(decode(1_000, &chunk.bytes).unwrap(), points);
    }

    #[test]
    fn a_stable_tick_costs_a_few_bytes() {
        let mut points = vec![point(0, 2, "unchanged", "612m over 2 ready pods")];
        for i in 1..60 {
            points.push(point(i * 15_000, 2, "unchanged", "612m over 2 ready pods"));
        }
        let bytes = encode(&points).unwrap().bytes;
        let first = encode(&points[..1]).unwrap().bytes.len();
        let per_tick = (bytes.len() - first) as f64 / 59.0;
        assert!(per_tick <= 8.0, "{per_tick} bytes per stable tick");
    }

    #[test]
    fn a_full_chunk_or_a_step_back_in_time_starts_a_new_chunk() {
        let mut writer = SeriesWriter::default();
        for i in 0..CHUNK_POINTS as i64 {
            writer.push(point(i * 1_000, 2, "unchanged", "1")).unwrap();
        }
        let next = writer.push(point(CHUNK_POINTS as i64 * 1_000, 2, "unchanged", "1")).unwrap();
        assert_eq!((next.start, next.ticks), (CHUNK_POINTS as i64 * 1_000, 1));
        assert_eq!(decode(next.start, &next.bytes).unwrap().len(), 1, "a new chunk carries every field again");
        let back = writer.push(point(5, 2, "unchanged", "1")).unwrap();
        assert_eq!((back.start, back.ticks), (5, 1));
    }

    #[test]
    fn a_chunk_from_an_unknown_format_is_an_error() {
        assert!(decode(0, &[9, 0]).is_err());
        assert!(decode(0, &[]).is_err());
    }
}
