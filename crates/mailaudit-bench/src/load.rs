//! The lab server's own capacity: many UDP clients asking as fast as it answers.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use mailaudit_lab::client::build_query;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;

/// How long a load client waits for one reply before counting it lost.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// The result of [`udp_load`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadResult {
    /// Queries sent.
    pub sent: u64,
    /// Replies received.
    pub answered: u64,
    /// From the first query to the last reply.
    pub elapsed: Duration,
}

impl LoadResult {
    /// Replies per second.
    pub fn rate(&self) -> f64 {
        self.answered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Sends `total` TXT queries for `names` (round robin) to `server` from `clients` UDP sockets,
/// each waiting for its reply before the next query, and counts the replies. A query not
/// answered within 2 s is lost; the run is bounded by `total` queries.
pub async fn udp_load(
    server: SocketAddr,
    names: &[String],
    clients: usize,
    total: u64,
) -> std::io::Result<LoadResult> {
    let clients = clients.max(1);
    let per_client = total / clients as u64;
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for c in 0..clients {
        let names: Vec<String> = names.to_vec();
        tasks.spawn(async move {
            let socket = UdpSocket::bind(("127.0.0.1", 0)).await?;
            socket.connect(server).await?;
            let mut buf = vec![0u8; 4096];
            let mut answered = 0u64;
            for i in 0..per_client {
                let Some(name) = names.get((c + i as usize) % names.len().max(1)) else {
                    break;
                };
                let id = (c as u64 * per_client + i) as u16;
                let Ok(query) = build_query(id, name, RecordType::TXT, Some(1232)) else {
                    continue;
                };
                socket.send(&query).await?;
                if let Ok(Ok(len)) =
                    tokio::time::timeout(REPLY_TIMEOUT, socket.recv(&mut buf)).await
                    && len > 12
                {
                    answered += 1;
                }
            }
            std::io::Result::Ok(answered)
        });
    }
    let mut answered = 0;
    while let Some(result) = tasks.join_next().await {
        answered += result.map_err(std::io::Error::other)??;
    }
    Ok(LoadResult {
        sent: per_client * clients as u64,
        answered,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailaudit_lab::{LabDns, sample_fleet};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_query_is_answered_and_counted() {
        let (zone, domains) = sample_fleet();
        let dns = LabDns::start(zone).await.expect("lab");
        let result = udp_load(dns.addr(), &domains, 8, 800).await.expect("load");
        assert_eq!(result.sent, 800);
        assert_eq!(result.answered, 800);
        assert_eq!(dns.query_count(), 800);
        assert!(result.rate() > 0.0);
    }
}
