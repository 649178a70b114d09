//! `dfpipe worker`: a datafusion-distributed worker on a TCP port, serving stages of the
//! coordinators' plans until its shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use datafusion::error::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion_distributed::{DistributedExt, Worker, WorkerQueryContext};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::channels::Channels;
use crate::stores::{Registered, Stores};
use crate::{ClusterError, KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT, VERSION};

/// Listens on `listen` (`HOST:PORT`; port 0 picks a free one), calls `ready` with the bound
/// address once connections are accepted, and serves stages until `shutdown` completes. Each
/// task's session gets the coordinator's `[storage]` stores and this worker's channels.
pub async fn serve(
    listen: &str,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ClusterError> {
    let fail = |message: String| ClusterError::Serve { listen: listen.to_owned(), message };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| fail(format!("cannot listen: {e}; give a free HOST:PORT (port 0 picks one)")))?;
    let address = listener.local_addr().map_err(|e| fail(e.to_string()))?;
    let runtime = Arc::new(RuntimeEnv::default());
    let registered = Arc::new(Registered::default());
    let channels = Channels::default();
    let session_runtime = Arc::clone(&runtime);
    let worker = Worker::from_session_builder(move |ctx: WorkerQueryContext| {
        let (runtime, registered, channels) = (Arc::clone(&session_runtime), Arc::clone(&registered), channels.clone());
        async move { task_session(ctx, &runtime, &registered, channels) }
    })
    .with_runtime_env(runtime)
    .with_version(VERSION);
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true)).with_keepalive(Some(KEEPALIVE_INTERVAL));
    let server = Server::builder()
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .add_service(worker.into_worker_server());
    ready(address);
    server.serve_with_incoming_shutdown(incoming, shutdown).await.map_err(|e| fail(e.to_string()))
}

/// The session one task runs in.
fn task_session(
    ctx: WorkerQueryContext,
    runtime: &Arc<RuntimeEnv>,
    registered: &Registered,
    channels: Channels,
) -> Result<SessionState, DataFusionError> {
    let builder = ctx.builder.with_distributed_option_extension_from_headers::<Stores>(&ctx.headers)?;
    let state = builder.with_distributed_channel_resolver(channels).build();
    if let Some(stores) = state.config().options().extensions.get::<Stores>() {
        registered.register(stores, runtime)?;
    }
    Ok(state)
}
