use std::path::{Path, PathBuf};

use pglite_oxide::PgliteServer;

use super::DatabaseError;

/// Embedded PostgreSQL (pglite-oxide) listening on a loopback port, its data kept in a directory
/// across restarts.
pub struct EmbeddedServer {
    server: Option<PgliteServer>,
    url: String,
}

impl EmbeddedServer {
    pub async fn start(data_dir: &Path) -> Result<EmbeddedServer, DatabaseError> {
        let path: PathBuf = data_dir.to_owned();
        let failed = |message: String| DatabaseError::Embedded {
            path: path.display().to_string(),
            message,
        };
        std::fs::create_dir_all(&path).map_err(|error| failed(error.to_string()))?;
        let root = path.clone();
        // Preparing the cluster and starting the proxy thread block, so keep them off the runtime.
        let server =
            tokio::task::spawn_blocking(move || PgliteServer::builder().path(root).start())
                .await
                .map_err(|error| failed(error.to_string()))?
                .map_err(|error| failed(format!("{error:#}")))?;
        let url = server.database_url();
        tracing::info!(data_dir = %path.display(), "embedded PostgreSQL started");
        Ok(EmbeddedServer {
            server: Some(server),
            url,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops the server. Close every client connection first: the server's single backend
    /// waits for its client to disconnect.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            let stopped = tokio::task::spawn_blocking(move || server.shutdown()).await;
            match stopped {
                Ok(Ok(())) => tracing::info!("embedded PostgreSQL stopped"),
                Ok(Err(error)) => {
                    tracing::warn!(error = %format!("{error:#}"), "embedded PostgreSQL shutdown failed")
                }
                Err(error) => tracing::warn!(%error, "embedded PostgreSQL shutdown task failed"),
            }
        }
    }
}
