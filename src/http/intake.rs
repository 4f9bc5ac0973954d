//! Agents' results posts, written together (a group commit): each post waits in a queue,
//! and a writer takes every post that queued while it wrote the last batch and records
//! them in one transaction ([`probers::record::record_posts`]). Under light load a batch
//! is one post and nothing waits; under heavy load one commit carries hundreds of posts,
//! so the database does a few bulk statements and one WAL flush where it did a dozen
//! statements per post.
//!
//! A batch that fails is written again one post at a time, so one post's fault reaches
//! only that post's agent (which keeps the results and sends them again).

use std::sync::Arc;

use graph_store::PgPool;
use probers::record::{self, AgentPost, PostOutcome};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use tokio::sync::{mpsc, oneshot, watch, Mutex};

use super::error::ApiError;
use super::Tuning;

/// At most this many posts in one batch.
const MAX_POSTS: usize = 1_000;
/// A batch stops taking posts once it holds this many results.
const MAX_RESULTS: usize = 20_000;
/// Writers: while one waits for its commit, the next batch is being written.
const WRITERS: usize = 2;

/// The queue to the writers.
#[derive(Debug, Clone)]
pub struct Intake {
    queue: mpsc::Sender<Job>,
    /// Posts per commit, for `/metrics` (`edgewatch_agent_posts_per_commit`).
    pub posts_per_commit: Histogram,
}

#[derive(Debug)]
struct Job {
    post: AgentPost,
    answer: oneshot::Sender<graph_store::Result<PostOutcome>>,
}

impl Intake {
    /// Starts the writers (on the current tokio runtime); they end when the last
    /// [`Intake`] is dropped and the queue is empty.
    pub fn start(pool: PgPool, tuning: watch::Receiver<Arc<Tuning>>) -> Intake {
        let (queue, jobs) = mpsc::channel(MAX_POSTS * 4);
        let jobs = Arc::new(Mutex::new(jobs));
        let posts_per_commit = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        for _ in 0..WRITERS {
            let writer = Writer {
                pool: pool.clone(),
                tuning: tuning.clone(),
                jobs: jobs.clone(),
                posts_per_commit: posts_per_commit.clone(),
            };
            tokio::spawn(writer.run());
        }
        Intake { queue, posts_per_commit }
    }

    /// Records `post` with whatever else is queued, and says what became of it.
    pub async fn record(&self, post: AgentPost) -> Result<PostOutcome, ApiError> {
        let (answer, outcome) = oneshot::channel();
        self.queue.send(Job { post, answer }).await.map_err(|_| stopped())?;
        Ok(outcome.await.map_err(|_| stopped())??)
    }
}

fn stopped() -> ApiError {
    ApiError::Unavailable("the server is stopping; send the results again".into())
}

struct Writer {
    pool: PgPool,
    tuning: watch::Receiver<Arc<Tuning>>,
    jobs: Arc<Mutex<mpsc::Receiver<Job>>>,
    posts_per_commit: Histogram,
}

impl Writer {
    async fn run(self) {
        while let Some(batch) = self.next_batch().await {
            self.write(batch).await;
        }
    }

    /// The next post, and every post queued behind it up to the batch limits; `None`
    /// once the queue is closed and empty.
    async fn next_batch(&self) -> Option<Vec<Job>> {
        let mut jobs = self.jobs.lock().await;
        let first = jobs.recv().await?;
        let mut results = first.post.cycles.len();
        let mut batch = vec![first];
        while batch.len() < MAX_POSTS && results < MAX_RESULTS {
            match jobs.try_recv() {
                Ok(job) => {
                    results += job.post.cycles.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        Some(batch)
    }

    async fn write(&self, batch: Vec<Job>) {
        let cfg = self.tuning.borrow().record.clone();
        let (posts, answers): (Vec<AgentPost>, Vec<_>) = batch.into_iter().map(|j| (j.post, j.answer)).unzip();
        self.posts_per_commit.observe(posts.len() as f64);
        match record::record_posts(&self.pool, &posts, &cfg).await {
            Ok(outcomes) => {
                for (answer, outcome) in answers.into_iter().zip(outcomes) {
                    let _ = answer.send(Ok(outcome));
                }
            }
            Err(e) if posts.len() == 1 => {
                let _ = answers.into_iter().next().map(|a| a.send(Err(e)));
            }
            Err(e) => {
                tracing::warn!(
                    posts = posts.len(),
                    "writing a batch of agents' results failed ({e}); writing them one by one"
                );
                for (post, answer) in posts.into_iter().zip(answers) {
                    let one = record::record_posts(&self.pool, std::slice::from_ref(&post), &cfg).await;
                    let _ = answer.send(one.map(|mut o| o.remove(0)));
                }
            }
        }
    }
}
