//! The object stores of `[storage]`, carried to workers with every task: each worker builds
//! them from the same options and its own environment's credentials, which never travel.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use datafusion::common::extensions_options;
use datafusion::config::ConfigExtension;
use datafusion::error::DataFusionError;
use datafusion::execution::runtime_env::RuntimeEnv;
use dfpipe_storage::{StoreOptions, StorePrefix};

extensions_options! {
    /// `[storage]` tables as JSON, propagated to workers in each task's headers.
    pub(crate) struct Stores {
        /// `{"s3://bucket": {"endpoint": ...}}`.
        pub tables: String, default = String::new()
    }
}

impl ConfigExtension for Stores {
    const PREFIX: &'static str = "dfpipe_storage";
}

impl Stores {
    /// The extension for `tables`.
    pub(crate) fn of(tables: &BTreeMap<StorePrefix, StoreOptions>) -> Self {
        Self { tables: serde_json::to_string(tables).unwrap_or_default() }
    }
}

/// The stores a worker has registered on its runtime, by prefix: built once per options.
#[derive(Default)]
pub(crate) struct Registered {
    built: Mutex<BTreeMap<StorePrefix, StoreOptions>>,
}

impl Registered {
    /// Registers on `runtime` every store of `stores` not registered with these options yet.
    pub(crate) fn register(&self, stores: &Stores, runtime: &Arc<RuntimeEnv>) -> Result<(), DataFusionError> {
        if stores.tables.is_empty() {
            return Ok(());
        }
        let tables: BTreeMap<StorePrefix, StoreOptions> = serde_json::from_str(&stores.tables)
            .map_err(|e| DataFusionError::Configuration(format!("the coordinator's [storage] tables: {e}")))?;
        let mut built = self.built.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (prefix, options) in tables {
            if built.get(&prefix) == Some(&options) {
                continue;
            }
            let store = dfpipe_storage::build(&prefix, &options)
                .map_err(|e| DataFusionError::Configuration(format!("on this worker: {e}")))?;
            runtime.register_object_store(prefix.url(), store);
            built.insert(prefix, options);
        }
        Ok(())
    }
}
