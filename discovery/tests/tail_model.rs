//! The tailer against a model: a script of appends, partial lines, rename-rotations,
//! copytruncates, deletions and restarts (graceful and crashed) is played on real files
//! while `tail` follows them into a real PostgreSQL; after every step the counts in the
//! store must equal what a perfect reader would have read by then.

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use discovery::cmdb::{import_files, ImportOptions};
use discovery::dns::ingest::IngestOptions;
use discovery::dns::tail::{tail, TailOptions};
use graph_store::query::{self, ListOptions};
use graph_store::testing::TestDb;
use graph_store::PgPool;
use rand::{Rng, SeedableRng};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const CONSUMERS: u8 = 6;

fn inventory() -> String {
    let mut containers: Vec<String> = (0..CONSUMERS)
        .map(|k| format!(r#"{{"name": "c{k}.h1", "host": "h1", "dc": "Tx", "ips": ["127.5.0.{}"]}}"#, k + 1))
        .collect();
    containers.push(r#"{"name": "p.h2", "host": "h2", "dc": "Tx", "ips": ["127.5.1.1"], "services": ["svc"]}"#.into());
    format!(r#"{{"containers": [{}]}}"#, containers.join(",\n"))
}

fn line(k: u8) -> String {
    format!("Remote 127.5.0.{} wants 'svc.example.com|A', do = 0, bufsize = 1232: packetcache MISS\n", k + 1)
}

struct Tailer {
    shutdown: CancellationToken,
    task: JoinHandle<discovery::Result<discovery::dns::aggregate::Totals>>,
}

fn start(pool: &PgPool, path: &Path) -> Tailer {
    let shutdown = CancellationToken::new();
    let opts = TailOptions {
        ingest: IngestOptions { zones: vec!["example.com".into()], batch_lines: 50, ..Default::default() },
        flush_every: Duration::from_millis(30),
        max_poll: Duration::from_millis(40),
        cmdb_refresh: Duration::from_secs(3600),
        expire_after: None,
    };
    let (pool, paths, token) = (pool.clone(), vec![path.to_path_buf()], shutdown.clone());
    let task = tokio::spawn(async move {
        let result = tail(&pool, &paths, &opts, token).await;
        if let Err(e) = &result {
            eprintln!("TAILER FAILED: {e}");
        }
        result
    });
    Tailer { shutdown, task }
}

/// Queries per consumer, as the store has them.
async fn stored(pool: &PgPool) -> BTreeMap<String, i64> {
    query::edges(pool, ListOptions::default()).await.unwrap().into_iter().map(|e| (e.src, e.queries)).collect()
}

/// Waits until the tailer has opened the file now at `path` (its read position is
/// stored). Files are rotated no faster than a tailer can notice them; what it must
/// handle is being behind on their content.
async fn opened(pool: &PgPool, path: &Path) {
    use std::os::unix::fs::MetadataExt;
    let file = std::fs::File::open(path).unwrap();
    let meta = file.metadata().unwrap();
    let fp = discovery::dns::source::fingerprint(&file).unwrap().expect("a complete first line");
    for _ in 0..400 {
        if graph_store::dns::find_checkpoint(pool, meta.dev() as i64, meta.ino() as i64, &fp).await.unwrap().is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    panic!("the tailer never opened {}", path.display());
}

/// Waits until the store holds what the model says (or fails after a while).
async fn caught_up(pool: &PgPool, model: &BTreeMap<String, i64>, step: &str) {
    for _ in 0..400 {
        if stored(pool).await == *model {
            return;
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    panic!("after {step}: store {:?} != model {model:?}", stored(pool).await);
}

struct Writer {
    path: PathBuf,
    /// The first part of a line written without its end.
    partial: Option<(u8, usize)>,
}

impl Writer {
    fn append(&mut self, bytes: &[u8]) {
        std::fs::OpenOptions::new().create(true).append(true).open(&self.path).unwrap().write_all(bytes).unwrap();
    }

    /// Completes a pending partial line; returns its consumer.
    fn finish_partial(&mut self) -> Option<u8> {
        let (k, cut) = self.partial.take()?;
        self.append(&line(k).as_bytes()[cut..]);
        Some(k)
    }
}

async fn run_script(seed: u64) {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory.json");
    std::fs::write(&inv, inventory()).unwrap();
    import_files(&db.pool, &[inv], ImportOptions::default()).await.unwrap();

    let path = dir.path().join("pdns.log");
    let mut w = Writer { path: path.clone(), partial: None };
    // A first line that is no query, so every file has a fingerprint of its own.
    let mut generation = 0;
    let header = |w: &mut Writer, generation: &mut u32| {
        *generation += 1;
        w.append(format!("PowerDNS Authoritative Server start {generation} (seed {seed})\n").as_bytes());
    };
    header(&mut w, &mut generation);
    let mut model: BTreeMap<String, i64> = BTreeMap::new();
    let count = |model: &mut BTreeMap<String, i64>, k: u8| *model.entry(format!("c{k}.h1")).or_default() += 1;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut tailer = start(&db.pool, &path);

    for step in 0..70 {
        let op = rng.random_range(0..100);
        let name;
        if op < 40 {
            name = "append";
            if let Some(k) = w.finish_partial() {
                count(&mut model, k);
            }
            let n = rng.random_range(1..40);
            let mut text = String::new();
            for _ in 0..n {
                let k = rng.random_range(0..CONSUMERS);
                text.push_str(&line(k));
                count(&mut model, k);
            }
            w.append(text.as_bytes());
        } else if op < 55 {
            name = "partial line";
            if w.partial.is_none() {
                let k = rng.random_range(0..CONSUMERS);
                let cut = rng.random_range(1..line(k).len() - 1);
                w.append(&line(k).as_bytes()[..cut]);
                w.partial = Some((k, cut));
            }
        } else if op < 68 {
            name = "rename rotation";
            opened(&db.pool, &path).await;
            // The writer's last lines land in the old file, then it moves on.
            if let Some(k) = w.finish_partial() {
                count(&mut model, k);
            }
            let k = rng.random_range(0..CONSUMERS);
            w.append(line(k).as_bytes());
            count(&mut model, k);
            std::fs::rename(&path, dir.path().join(format!("pdns.log.{step}"))).unwrap();
            header(&mut w, &mut generation);
        } else if op < 78 {
            name = "copytruncate";
            if let Some(k) = w.finish_partial() {
                count(&mut model, k);
            }
            // logrotate copies, then truncates; lines before the copy were read by then.
            caught_up(&db.pool, &model, "before copytruncate").await;
            std::fs::copy(&path, dir.path().join(format!("pdns.log.{step}"))).unwrap();
            let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            let old_len = f.metadata().unwrap().len();
            f.set_len(0).unwrap();
            if rng.random_bool(0.5) {
                // A writer without O_APPEND goes on at its old offset: a hole of NULs.
                f.seek(SeekFrom::Start(old_len)).unwrap();
            }
            generation += 1;
            f.write_all(format!("PowerDNS Authoritative Server restart {generation} (seed {seed})\n").as_bytes())
                .unwrap();
        } else if op < 85 {
            name = "delete and re-create";
            if let Some(k) = w.finish_partial() {
                count(&mut model, k);
            }
            caught_up(&db.pool, &model, "before deletion").await;
            std::fs::remove_file(&path).unwrap();
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..80))).await;
            header(&mut w, &mut generation);
        } else if op < 93 {
            name = "graceful restart";
            tailer.shutdown.cancel();
            tailer.task.await.unwrap().unwrap();
            tailer = start(&db.pool, &path);
        } else {
            name = "crash restart";
            tailer.task.abort();
            let _ = tailer.task.await;
            tailer = start(&db.pool, &path);
        }
        eprintln!("step {step}: {name}");
        if rng.random_bool(0.3) {
            caught_up(&db.pool, &model, &format!("step {step} ({name})")).await;
        }
    }
    if let Some(k) = w.finish_partial() {
        count(&mut model, k);
    }
    caught_up(&db.pool, &model, "the end").await;
    tailer.shutdown.cancel();
    tailer.task.await.unwrap().unwrap();
    assert_eq!(stored(&db.pool).await, model, "seed {seed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tailer_reads_what_a_perfect_reader_reads() {
    let seed: u64 =
        std::env::var("TAIL_MODEL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| rand::rng().random());
    eprintln!("tail model seed {seed} (TAIL_MODEL_SEED={seed} replays it)");
    run_script(seed).await;
    run_script(seed.wrapping_add(1)).await;
}
