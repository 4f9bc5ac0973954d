//! The tailer against a model: a script of appends, partial lines, rename-rotations,
//! copytruncates, compressions of rotated files, deletions and restarts (graceful and
//! crashed: at any point of a rotation, before the new file's first checkpoint, with
//! several rotations while the tailer is down) is played on real files while `tail`
//! follows them into a real PostgreSQL; after every step the counts in the store must
//! equal what a perfect reader would have read by then.

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

fn count(model: &mut BTreeMap<String, i64>, k: u8) {
    *model.entry(format!("c{k}.h1")).or_default() += 1;
}

/// Compresses one of the plain rotated files, as logrotate's `compress` does: the `.gz` is
/// written whole, then the plain file goes.
fn compress_one(dir: &Path, rng: &mut impl Rng) -> bool {
    let mut plain: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("pdns.log.") && p.extension().unwrap() != "gz")
        .collect();
    plain.sort();
    if plain.is_empty() {
        return false;
    }
    let victim = &plain[rng.random_range(0..plain.len())];
    let gz = victim.with_extension(format!("{}.gz", victim.extension().unwrap().to_str().unwrap()));
    let tmp = dir.join("compressing.tmp");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&tmp).unwrap(), flate2::Compression::fast());
    enc.write_all(&std::fs::read(victim).unwrap()).unwrap();
    enc.finish().unwrap();
    std::fs::rename(&tmp, &gz).unwrap();
    std::fs::remove_file(victim).unwrap();
    true
}

fn line(k: u8) -> String {
    format!("Remote 127.5.0.{} wants 'svc.example.com|A', do = 0, bufsize = 1232: packetcache MISS\n", k + 1)
}

/// A tailer with connections of its own, as a process has: a crash drops them all, so
/// nothing it left half-done (a transaction begun when it died) lingers in a pool that
/// lives on.
struct Tailer {
    shutdown: CancellationToken,
    task: JoinHandle<discovery::Result<discovery::dns::aggregate::Totals>>,
    pool: PgPool,
}

async fn start(url: &str, path: &Path) -> Tailer {
    let pool = graph_store::connect(&graph_store::db::Target::Url(url.to_string()), graph_store::Pooler::None)
        .await
        .unwrap()
        .pool;
    let shutdown = CancellationToken::new();
    let opts = TailOptions {
        ingest: IngestOptions { zones: vec!["example.com".into()], batch_lines: 50, ..Default::default() },
        flush_every: Duration::from_millis(30),
        max_poll: Duration::from_millis(40),
        cmdb_refresh: Duration::from_secs(3600),
        expire_after: None,
    };
    let (task_pool, paths, token) = (pool.clone(), vec![path.to_path_buf()], shutdown.clone());
    let task = tokio::spawn(async move {
        let result = tail(&task_pool, &paths, &opts, token).await;
        if let Err(e) = &result {
            eprintln!("TAILER FAILED: {e}");
        }
        result
    });
    Tailer { shutdown, task, pool }
}

/// Kills the tailer where it stands (what SIGKILL does to the process).
async fn crash(tailer: &mut Tailer) {
    tailer.task.abort();
    let _ = (&mut tailer.task).await;
    tailer.pool.close().await;
}

/// Queries per consumer, as the store has them.
async fn stored(pool: &PgPool) -> BTreeMap<String, i64> {
    query::edges(pool, ListOptions::default()).await.unwrap().into_iter().map(|e| (e.src, e.queries)).collect()
}

/// Waits until the store holds what the model says (or fails after a while).
async fn caught_up(pool: &PgPool, model: &BTreeMap<String, i64>, step: &str) {
    for _ in 0..400 {
        if stored(pool).await == *model {
            return;
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    // What the files and the checkpoints say, to tell which file was read how far.
    let mut files = String::new();
    let mut checkpoints = String::new();
    if let Some(dir) = WATCHED.with(|d| d.borrow().clone()) {
        use std::os::unix::fs::MetadataExt;
        let mut entries: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let m = e.metadata().unwrap();
            let bytes = std::fs::read(e.path()).unwrap();
            let text = if e.path().extension().is_some_and(|x| x == "gz") {
                let mut out = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out).unwrap();
                out
            } else {
                bytes
            };
            let text = String::from_utf8_lossy(&text);
            let per: Vec<usize> = (0..CONSUMERS).map(|k| text.matches(line(k).as_str()).count()).collect();
            files +=
                &format!("\n  {:?} inode {} {} bytes, lines per consumer {per:?}", e.file_name(), m.ino(), m.len());
        }
        let path = dir.join("pdns.log").display().to_string();
        for c in graph_store::dns::checkpoints_for(pool, &path, &[]).await.unwrap() {
            checkpoints +=
                &format!("\n  inode {} {} at {} (head {})", c.inode, c.fingerprint, c.byte_offset, c.head.len());
        }
    }
    panic!("after {step}: store {:?} != model {model:?}\nfiles:{files}\ncheckpoints:{checkpoints}", stored(pool).await);
}

thread_local! {
    /// The directory of the script being played (for failure messages).
    static WATCHED: std::cell::RefCell<Option<PathBuf>> = const { std::cell::RefCell::new(None) };
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

    /// Writes `n` random whole lines (after completing a pending partial one).
    fn lines(&mut self, rng: &mut impl Rng, model: &mut BTreeMap<String, i64>, n: usize) {
        if let Some(k) = self.finish_partial() {
            count(model, k);
        }
        let mut text = String::new();
        for _ in 0..n {
            let k = rng.random_range(0..CONSUMERS);
            text.push_str(&line(k));
            count(model, k);
        }
        self.append(text.as_bytes());
    }

    /// Rotates by rename: the writer's last lines land in the old file, which becomes
    /// `pdns.log.<n>`; a new file with a header of its own takes the path.
    fn rotate(&mut self, rng: &mut impl Rng, model: &mut BTreeMap<String, i64>, n: usize, header: &str) {
        self.lines(rng, model, 1);
        std::fs::rename(&self.path, self.path.with_extension(format!("log.{n}"))).unwrap();
        self.append(header.as_bytes());
    }

    /// Copytruncate: copies the file to `pdns.log.<n>`, truncates it, and writes a header,
    /// with half the time a writer that goes on at its old offset (a hole of NULs).
    fn copytruncate(&mut self, rng: &mut impl Rng, model: &mut BTreeMap<String, i64>, n: usize, header: &str) {
        if let Some(k) = self.finish_partial() {
            count(model, k);
        }
        std::fs::copy(&self.path, self.path.with_extension(format!("log.{n}"))).unwrap();
        let mut f = std::fs::OpenOptions::new().write(true).open(&self.path).unwrap();
        let old_len = f.metadata().unwrap().len();
        f.set_len(0).unwrap();
        if rng.random_bool(0.5) {
            f.seek(SeekFrom::Start(old_len)).unwrap();
        }
        f.write_all(header.as_bytes()).unwrap();
    }

    /// Completes a pending partial line; returns its consumer.
    fn finish_partial(&mut self) -> Option<u8> {
        let (k, cut) = self.partial.take()?;
        self.append(&line(k).as_bytes()[cut..]);
        Some(k)
    }
}

/// A fresh database with the model's fleet, and a directory for `pdns.log` (its path).
async fn fleet() -> (TestDb, tempfile::TempDir, PathBuf) {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory.json");
    std::fs::write(&inv, inventory()).unwrap();
    import_files(&db.pool, &[inv], ImportOptions::default()).await.unwrap();
    WATCHED.with(|d| *d.borrow_mut() = Some(dir.path().canonicalize().unwrap()));
    let path = dir.path().join("pdns.log");
    (db, dir, path)
}

async fn run_script(seed: u64) {
    let (db, dir, path) = fleet().await;
    let mut w = Writer { path: path.clone(), partial: None };
    // A first line that is no query, so every file has a fingerprint of its own.
    let mut generation = 0;
    let header = |w: &mut Writer, generation: &mut u32| {
        *generation += 1;
        w.append(format!("PowerDNS Authoritative Server start {generation} (seed {seed})\n").as_bytes());
    };
    header(&mut w, &mut generation);
    let mut model: BTreeMap<String, i64> = BTreeMap::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut tailer = start(&db.url, &path).await;

    for step in 0..70 {
        let op = rng.random_range(0..100);
        let name;
        let mut new_header = || {
            generation += 1;
            format!("PowerDNS Authoritative Server start {generation} (seed {seed})\n")
        };
        if op < 30 {
            name = "append";
            let n = rng.random_range(1..40);
            w.lines(&mut rng, &mut model, n);
        } else if op < 40 {
            name = "partial line";
            if w.partial.is_none() {
                let k = rng.random_range(0..CONSUMERS);
                let cut = rng.random_range(1..line(k).len() - 1);
                w.append(&line(k).as_bytes()[..cut]);
                w.partial = Some((k, cut));
            }
        } else if op < 50 {
            name = "rename rotation";
            w.rotate(&mut rng, &mut model, step, &new_header());
        } else if op < 57 {
            name = "copytruncate";
            w.copytruncate(&mut rng, &mut model, step, &new_header());
        } else if op < 63 {
            name = "crash at a rotation";
            // Killed just before the rename, just after it, or after lines went to the
            // new file before the tailer could commit any of them.
            let when = rng.random_range(0..3);
            if when == 0 {
                crash(&mut tailer).await;
            }
            w.rotate(&mut rng, &mut model, step, &new_header());
            if when == 1 {
                crash(&mut tailer).await;
            }
            if when == 2 {
                let n = rng.random_range(1..10);
                w.lines(&mut rng, &mut model, n);
                crash(&mut tailer).await;
            }
            tailer = start(&db.url, &path).await;
        } else if op < 69 {
            name = "rotations while down";
            crash(&mut tailer).await;
            for k in 0..rng.random_range(1..4) {
                let n = rng.random_range(0..10);
                w.lines(&mut rng, &mut model, n);
                let header = new_header();
                if rng.random_bool(0.7) {
                    w.rotate(&mut rng, &mut model, 1000 + step * 10 + k, &header);
                } else {
                    w.copytruncate(&mut rng, &mut model, 1000 + step * 10 + k, &header);
                }
            }
            tailer = start(&db.url, &path).await;
        } else if op < 74 {
            name = "compress a rotated file";
            let down = rng.random_bool(0.5);
            if down {
                crash(&mut tailer).await;
            }
            compress_one(dir.path(), &mut rng);
            if down {
                tailer = start(&db.url, &path).await;
            } else {
                // A restart (later) must not read the compressed form again.
                continue;
            }
        } else if op < 80 {
            name = "delete and re-create";
            if let Some(k) = w.finish_partial() {
                count(&mut model, k);
            }
            // A deleted file's unread lines are gone with it: delete only what was read.
            caught_up(&db.pool, &model, "before deletion").await;
            std::fs::remove_file(&path).unwrap();
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..80))).await;
            w.append(new_header().as_bytes());
        } else if op < 88 {
            name = "graceful restart";
            tailer.shutdown.cancel();
            tailer.task.await.unwrap().unwrap();
            tailer = start(&db.url, &path).await;
        } else {
            name = "crash restart";
            crash(&mut tailer).await;
            tailer = start(&db.url, &path).await;
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
    eprintln!("tail model seed {seed} (TAIL_MODEL_SEED={seed} replays it; TAIL_MODEL_LOG=debug tells more)");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("TAIL_MODEL_LOG"))
        .with_test_writer()
        .try_init();
    run_script(seed).await;
    run_script(seed.wrapping_add(1)).await;
}

/// A copytruncate whose writer went on between the copy and the truncation: the copy
/// lacks lines the file was seen to hold. Those were read from the file (nothing lost
/// here), but lines written after the last look may have been: the loss is counted, not
/// silent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_that_lacks_what_the_file_held_is_counted() {
    let (db, dir, path) = fleet().await;
    let mut w = Writer { path: path.clone(), partial: None };
    w.append(b"PowerDNS Authoritative Server start 1\n");
    let mut model = BTreeMap::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let tailer = start(&db.url, &path).await;
    w.lines(&mut rng, &mut model, 20);
    caught_up(&db.pool, &model, "the first lines").await;
    std::fs::copy(&path, dir.path().join("pdns.log.1")).unwrap();
    w.lines(&mut rng, &mut model, 5);
    caught_up(&db.pool, &model, "the lines after the copy").await;
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
    w.append(b"PowerDNS Authoritative Server start 2\n");
    w.lines(&mut rng, &mut model, 3);
    caught_up(&db.pool, &model, "the truncation").await;
    tailer.shutdown.cancel();
    tailer.task.await.unwrap().unwrap();
    let stats = graph_store::dns::stats(&db.pool, 10).await.unwrap();
    let loss: Vec<i64> = stats.skipped.iter().filter(|s| s.name == "copytruncate-loss").map(|s| s.count).collect();
    assert_eq!(loss, vec![1], "{:?}", stats.skipped);
    assert_eq!(stored(&db.pool).await, model);
}
