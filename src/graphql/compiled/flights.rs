//! Identical compiled statements asked for at the same time run once.
//!
//! A request whose statement and arguments match one that is still waiting for a connection
//! joins it and takes its answer. A statement stops taking joiners when it has its connection,
//! before it is sent, so every answer is read in a snapshot taken after its own request
//! arrived (a client that wrote and then reads sees its write), as the resolvers' batch
//! loader promises too. Under load, when requests queue for connections, the same page asked
//! by many clients costs the database one statement per wait instead of one per request.

use super::slots::Param;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use sqlx::{AssertSqlSafe, PgPool};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A statement's answer (the `data` JSON text), or its error's text.
pub type Landed = Result<Arc<str>, Arc<str>>;

type Flight = Shared<BoxFuture<'static, Landed>>;

/// What makes two runs the same: the database, the statement and its parameters.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    /// The pool's identity (its connect options are shared by all its clones).
    pool: usize,
    sql: Arc<str>,
    params: Vec<Param>,
}

/// The statements waiting for a connection, by what they run, each with its number.
#[derive(Default, Clone)]
pub struct Flights {
    boarding: Arc<Mutex<HashMap<Key, (u64, Flight)>>>,
    numbers: Arc<std::sync::atomic::AtomicU64>,
}

impl Flights {
    /// Runs `sql` with `params` on `pool`, or joins the same run if one is still waiting for
    /// its connection. The statement's one value, text, is the answer.
    pub async fn run(&self, pool: &PgPool, sql: &Arc<str>, params: Vec<Param>) -> Landed {
        let key = Key {
            pool: Arc::as_ptr(&pool.connect_options()) as usize,
            sql: sql.clone(),
            params,
        };
        let flight = {
            let mut boarding = self.lock();
            match boarding.get(&key) {
                Some((_, flight)) => {
                    metrics::counter!("graphql_compiled_shared_total").increment(1);
                    flight.clone()
                }
                None => {
                    let number = self
                        .numbers
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let flight = self.fly(pool.clone(), key.clone(), number);
                    boarding.insert(key, (number, flight.clone()));
                    // Run to the end even if every request that waits for it goes away, so
                    // that it leaves the table.
                    tokio::spawn(flight.clone());
                    flight
                }
            }
        };
        flight.await
    }

    fn fly(&self, pool: PgPool, key: Key, number: u64) -> Flight {
        let flights = self.clone();
        async move {
            let landed = async {
                let mut conn = pool.acquire().await?;
                // Sent from here on: later requests need a run of their own.
                flights.land(&key, number);
                let mut query = sqlx::query_scalar::<_, String>(AssertSqlSafe(key.sql.clone()));
                for param in &key.params {
                    query = match param {
                        Param::Int(v) => query.bind(*v),
                        Param::Text(v) => query.bind(v.clone()),
                        Param::Uuid(v) => query.bind(*v),
                    };
                }
                query.fetch_one(&mut *conn).await
            }
            .await;
            // A run that failed before it had a connection no longer takes joiners either.
            flights.land(&key, number);
            landed.map(Arc::from).map_err(|e| Arc::from(e.to_string()))
        }
        .boxed()
        .shared()
    }

    /// How many requests wait for statements that have no connection yet.
    pub fn waiting(&self) -> usize {
        // Besides its requests, the table and the task that drives it hold each run.
        self.lock()
            .values()
            .map(|(_, flight)| flight.strong_count().unwrap_or(2).saturating_sub(2))
            .sum()
    }

    /// Takes run `number` off the table (not a later run of the same statement).
    fn land(&self, key: &Key, number: u64) {
        let mut boarding = self.lock();
        if boarding.get(key).is_some_and(|(n, _)| *n == number) {
            boarding.remove(key);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, (u64, Flight)>> {
        self.boarding.lock().unwrap_or_else(|e| e.into_inner())
    }
}
