//! The coordinator's side: which workers, how a session reaches them, how a physical plan is
//! cut into stages for them, and how many tasks each was given.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::{EmptyRelation, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::scalar_subquery::ScalarSubqueryExec;
use datafusion::prelude::SessionConfig;
use datafusion_distributed::{
    DistributedExec, DistributedExt, DistributedMetricsFormat, GetWorkerInfoRequest, NetworkBoundaryExt,
    RouteTasksEvent, RouteTasksEventResponse, RouteTasksHandler, SessionStateBuilderExt, Stage, WorkerResolver,
    display_plan_ascii, rewrite_distributed_plan_with_metrics,
};
use dfpipe_storage::{StoreOptions, StorePrefix};
use url::Url;

use crate::channels::Channels;
use crate::stores::Stores;
use crate::{ClusterError, METRICS_TIMEOUT, PROBE_TIMEOUT, VERSION};

/// The workers a coordinator runs plans on, and the tasks it gave each.
#[derive(Clone)]
pub struct Cluster {
    /// `HOST:PORT` and its URL, in the order given.
    workers: Vec<(String, Url)>,
    /// `distributed.*` settings of the planner.
    settings: BTreeMap<String, String>,
    stores: Stores,
    channels: Channels,
    tasks: Arc<Mutex<BTreeMap<String, usize>>>,
    /// Where the next stage's tasks start, so that stages spread over the workers.
    next: Arc<AtomicUsize>,
    /// The workers found not answering: no plan is cut for them any more.
    lost: Arc<Mutex<BTreeSet<String>>>,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("workers", &self.workers())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// A cluster of the workers at `addresses`, each `HOST:PORT`. Nothing is contacted.
    pub fn new(addresses: &[String]) -> Result<Self, ClusterError> {
        if addresses.is_empty() {
            return Err(ClusterError::Address {
                address: String::new(),
                message: "a cluster needs at least one worker; give HOST:PORT[,HOST:PORT...]".to_owned(),
            });
        }
        let mut workers: Vec<(String, Url)> = Vec::with_capacity(addresses.len());
        for address in addresses {
            let address = address.trim();
            let url = parse_address(address)?;
            if workers.iter().any(|(_, known)| *known == url) {
                return Err(ClusterError::Address {
                    address: address.to_owned(),
                    message: "given twice; list each worker once".to_owned(),
                });
            }
            workers.push((address.to_owned(), url));
        }
        Ok(Self {
            workers,
            settings: BTreeMap::new(),
            stores: Stores::default(),
            channels: Channels::default(),
            tasks: Arc::default(),
            next: Arc::default(),
            lost: Arc::default(),
        })
    }

    /// Sets datafusion-distributed's planner settings, by full key
    /// (`distributed.file_scan_config_bytes_per_partition`, ...). An unknown key or a bad
    /// value is refused here.
    pub fn with_settings(mut self, settings: BTreeMap<String, String>) -> Result<Self, ClusterError> {
        if let Some(key) = settings.keys().find(|key| !key.starts_with("distributed.")) {
            return Err(ClusterError::Setting {
                key: key.clone(),
                message: "cluster settings are datafusion-distributed's, named `distributed.*`; \
                          DataFusion's own go in [profile.settings]"
                    .to_owned(),
            });
        }
        // Set once on a throwaway session, so that a bad key or value is refused here.
        set_all(&mut SessionConfig::new().with_distributed_worker_resolver(Resolver(self.clone())), &settings)?;
        self.settings = settings;
        Ok(self)
    }

    /// Gives the workers these object stores, built on each worker from the same options
    /// and that worker's own credentials.
    #[must_use]
    pub fn with_stores(mut self, tables: &BTreeMap<StorePrefix, StoreOptions>) -> Self {
        self.stores = Stores::of(tables);
        self
    }

    /// The workers, `HOST:PORT`, in the order given.
    pub fn workers(&self) -> Vec<String> {
        self.workers.iter().map(|(address, _)| address.clone()).collect()
    }

    /// The workers not on this machine (their host is not a loopback address): they cannot
    /// see its local files.
    pub fn remote_workers(&self) -> Vec<String> {
        (self.workers.iter()).filter(|(_, url)| !is_loopback(url)).map(|(address, _)| address.clone()).collect()
    }

    /// How many tasks each worker was given so far, by `HOST:PORT`; every worker is listed.
    pub fn tasks(&self) -> BTreeMap<String, usize> {
        let given = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        self.workers.iter().map(|(address, _)| (address.clone(), given.get(address).copied().unwrap_or(0))).collect()
    }

    /// Asks every worker for its version, each within [`PROBE_TIMEOUT`]: an error names the
    /// first that does not answer, or runs another version of dfpipe.
    pub async fn probe(&self) -> Result<(), ClusterError> {
        for (address, url) in &self.workers {
            self.probe_one(address, url).await?;
        }
        Ok(())
    }

    /// The workers that do not answer [`Cluster::probe`] now, to name them when a plan
    /// failed. They are lost for the rest of the run: plans cut afterwards leave them out.
    pub async fn unreachable(&self) -> Vec<String> {
        let probes = self
            .workers
            .iter()
            .map(|(address, url)| async move { self.probe_one(address, url).await.err().map(|_| address.clone()) });
        let down: Vec<String> = futures::future::join_all(probes).await.into_iter().flatten().collect();
        self.lost.lock().unwrap_or_else(PoisonError::into_inner).extend(down.iter().cloned());
        down
    }

    /// The workers not found lost, in the order given.
    fn live(&self) -> Vec<(String, Url)> {
        let lost = self.lost.lock().unwrap_or_else(PoisonError::into_inner);
        self.workers.iter().filter(|(address, _)| !lost.contains(address)).cloned().collect()
    }

    /// Asks the worker at `address` for its version.
    async fn probe_one(&self, address: &str, url: &Url) -> Result<(), ClusterError> {
        let unreachable = |message: String| ClusterError::Unreachable { worker: address.to_owned(), message };
        let channel = self.channels.channel(url).map_err(|e| unreachable(e.strip_backtrace()))?;
        let mut client = datafusion_distributed::grpc::create_worker_client(channel);
        let info = tokio::time::timeout(PROBE_TIMEOUT, client.get_worker_info(GetWorkerInfoRequest {}))
            .await
            .map_err(|_| {
                unreachable(format!(
                    "no answer within {} s; check that `dfpipe worker --listen {address}` runs and that \
                     this machine can reach it",
                    PROBE_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|e| {
                unreachable(format!(
                    "cannot be reached ({}); start it with `dfpipe worker --listen {address}`, or leave it \
                     out of --cluster",
                    first_line(&e.strip_backtrace())
                ))
            })?;
        if info.version != VERSION {
            return Err(unreachable(format!(
                "runs dfpipe {}, and this is dfpipe {VERSION}; run the same dfpipe on every machine",
                if info.version.is_empty() { "of an unknown version" } else { &info.version }
            )));
        }
        Ok(())
    }

    /// `state`, able to run distributed plans on the workers: how to reach them, how tasks
    /// are routed (and counted), the stores workers build, the planner settings. Plans stay
    /// as they are until [`Cluster::distribute`].
    pub fn configure(&self, state: SessionState) -> Result<SessionState, ClusterError> {
        let mut state = SessionStateBuilder::new_from_existing(state)
            .with_distributed_worker_resolver(Resolver(self.clone()))
            .with_distributed_channel_resolver(self.channels.clone())
            .with_distributed_route_tasks_handler(Routing(self.clone()))
            .with_distributed_option_extension(self.stores.clone())
            .build();
        set_all(state.config_mut(), &self.settings)?;
        Ok(state)
    }

    /// `plan` cut into stages by datafusion-distributed's planner, for a session made by
    /// [`Cluster::configure`]: a `DistributedExec` whose head stage runs here, or `plan`
    /// itself when the planner finds nothing worth distributing, or when the plan keeps an
    /// uncorrelated scalar subquery (workers cannot run a filter apart from the subquery it
    /// reads; rewriting it as a join, as the planner would, changes results and plans).
    pub async fn distribute(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        state: &SessionState,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if has_scalar_subquery(&plan)? || plan.is::<DistributedExec>() {
            return Ok(plan);
        }
        if self.live().is_empty() {
            return Err(DataFusionError::Execution(format!(
                "no worker of the cluster answers any more ({}); start them again, or run without --cluster",
                self.workers().join(", ")
            )));
        }
        // datafusion-distributed plans only as a query planner, after the planner before it:
        // that one hands it the plan already made.
        let planning = SessionStateBuilder::new_from_existing(state.clone())
            .with_query_planner(Arc::new(Planned(plan)))
            .with_distributed_planner()
            .build();
        let empty = LogicalPlan::EmptyRelation(EmptyRelation {
            produce_one_row: false,
            schema: Arc::new(datafusion::common::DFSchema::empty()),
        });
        planning.query_planner().create_physical_plan(&empty, &planning).await
    }
}

/// The plan drawn as its stages and network boundaries, when it is distributed.
pub fn display_distributed(plan: &dyn ExecutionPlan) -> Option<String> {
    plan.is::<DistributedExec>().then(|| display_plan_ascii(plan, false))
}

/// How many stages `plan` runs in: 1 for a plan that stays on this machine.
pub fn stage_count(plan: &Arc<dyn ExecutionPlan>) -> usize {
    let mut boundaries = 0;
    let _ = plan.apply(|node| {
        boundaries += usize::from(node.is_network_boundary());
        Ok(TreeNodeRecursion::Continue)
    });
    boundaries + 1
}

/// A distributed plan that ran, with the metrics of its stages on the workers folded in,
/// waiting at most [`METRICS_TIMEOUT`] for them (the plan as it is after that); any other
/// plan as it is.
pub async fn with_worker_metrics(plan: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
    if !plan.is::<DistributedExec>() {
        return plan;
    }
    let folded = rewrite_distributed_plan_with_metrics(Arc::clone(&plan), DistributedMetricsFormat::Aggregated);
    match tokio::time::timeout(METRICS_TIMEOUT, folded).await {
        Ok(Ok(folded)) => folded,
        Ok(Err(_)) | Err(_) => plan,
    }
}

/// Sets `settings` on `config`, which holds datafusion-distributed's options.
fn set_all(config: &mut SessionConfig, settings: &BTreeMap<String, String>) -> Result<(), ClusterError> {
    for (key, value) in settings {
        config
            .options_mut()
            .set(key, value)
            .map_err(|e| ClusterError::Setting { key: key.clone(), message: e.strip_backtrace() })?;
    }
    Ok(())
}

/// `HOST:PORT` as the worker's URL.
fn parse_address(address: &str) -> Result<Url, ClusterError> {
    let refuse = |message: &str| ClusterError::Address { address: address.to_owned(), message: message.to_owned() };
    if address.contains("://") {
        return Err(refuse("give HOST:PORT, without a scheme (like 127.0.0.1:50051)"));
    }
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(refuse("no port; give HOST:PORT (like 127.0.0.1:50051)"));
    };
    if host.is_empty() {
        return Err(refuse("no host; give HOST:PORT (like 127.0.0.1:50051)"));
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => return Err(refuse("the port is not a number from 1 to 65535")),
        Ok(_) => {}
    }
    Url::parse(&format!("http://{address}")).map_err(|e| refuse(&format!("not a host and port: {e}")))
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

fn has_scalar_subquery(plan: &Arc<dyn ExecutionPlan>) -> DfResult<bool> {
    plan.exists(|node| Ok(node.is::<ScalarSubqueryExec>()))
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// The workers, as datafusion-distributed asks for them.
struct Resolver(Cluster);

impl WorkerResolver for Resolver {
    fn get_urls(&self) -> DfResult<Vec<Url>, DataFusionError> {
        Ok(self.0.live().into_iter().map(|(_, url)| url).collect())
    }
}

/// Routes each stage's tasks to the workers in turn, starting where the last stage ended, so
/// that work spreads; a stage of one task goes where its single input task ran, so that its
/// rows need not move between workers. Counts what each worker was given.
struct Routing(Cluster);

impl RouteTasksHandler for Routing {
    fn handle(&self, ev: RouteTasksEvent) -> Option<DfResult<RouteTasksEventResponse>> {
        let cluster = &self.0;
        let live = cluster.live();
        if live.is_empty() {
            return Some(Err(DataFusionError::Execution("no worker of the cluster answers any more".to_owned())));
        }
        let urls: Vec<Url> = match (ev.task_count, lone_input(ev.plan)) {
            (1, Some(url)) => vec![url],
            (count, _) => {
                let start = cluster.next.fetch_add(count, Ordering::Relaxed);
                (0..count).map(|i| live[(start + i) % live.len()].1.clone()).collect()
            }
        };
        let mut tasks = cluster.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        for url in &urls {
            if let Some((address, _)) = cluster.workers.iter().find(|(_, known)| known == url) {
                *tasks.entry(address.clone()).or_default() += 1;
            }
        }
        Some(Ok(RouteTasksEventResponse::new(urls)))
    }
}

/// The worker of the single task of the first stage below `plan`, if it has one task.
fn lone_input(plan: &Arc<dyn ExecutionPlan>) -> Option<Url> {
    let mut found = None;
    let _ = plan.apply(|node| {
        let Some(boundary) = node.as_network_boundary() else { return Ok(TreeNodeRecursion::Continue) };
        if let Stage::Remote(remote) = boundary.input_stage()
            && let [url] = remote.workers.as_slice()
        {
            found = Some(url.clone());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Jump)
    });
    found
}

/// A query planner that returns the plan it holds: how a plan already made reaches
/// datafusion-distributed's planner.
#[derive(Debug)]
struct Planned(Arc<dyn ExecutionPlan>);

#[async_trait]
impl QueryPlanner for Planned {
    async fn create_physical_plan(&self, _: &LogicalPlan, _: &dyn Session) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(Arc::clone(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::{Cluster, parse_address};

    #[test]
    fn addresses_are_host_and_port() {
        assert_eq!(parse_address("127.0.0.1:50051").unwrap().as_str(), "http://127.0.0.1:50051/");
        assert_eq!(parse_address("[::1]:7").unwrap().host_str(), Some("[::1]"));
        for bad in ["127.0.0.1", "http://h:1", ":80", "h:0", "h:99999", "h:port"] {
            assert!(parse_address(bad).is_err(), "{bad} was taken");
        }
        let twice = Cluster::new(&["h:1".to_owned(), "h:1".to_owned()]).unwrap_err().to_string();
        assert!(twice.contains("given twice"), "{twice}");
        assert!(Cluster::new(&[]).is_err());
    }

    #[test]
    fn loopback_workers_are_local() {
        let addresses = ["127.0.0.1:1", "localhost:2", "[::1]:3", "10.1.2.3:4", "db.example:5"].map(String::from);
        let cluster = Cluster::new(&addresses).unwrap();
        assert_eq!(cluster.remote_workers(), ["10.1.2.3:4", "db.example:5"]);
        assert_eq!(cluster.tasks().values().sum::<usize>(), 0);
        assert_eq!(cluster.tasks().len(), 5);
    }

    #[test]
    fn settings_are_datafusion_distributed_keys() {
        let cluster = || Cluster::new(&["h:1".to_owned()]).unwrap();
        let set = |key: &str, value: &str| {
            cluster().with_settings([(key.to_owned(), value.to_owned())].into()).map(|_| ()).map_err(|e| e.to_string())
        };
        assert!(set("distributed.file_scan_config_bytes_per_partition", "1024").is_ok());
        assert!(set("distributed.no_such_knob", "1").unwrap_err().contains("distributed.no_such_knob"));
        assert!(set("distributed.file_scan_config_bytes_per_partition", "many").is_err());
        assert!(set("datafusion.execution.batch_size", "1").unwrap_err().contains("[profile.settings]"));
    }
}
