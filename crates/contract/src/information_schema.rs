//! `information_schema` with constraint tables: `table_constraints`, `key_column_usage`,
//! `referential_constraints` and `check_constraints`, beside DataFusion's own seven tables.
//!
//! DataFusion 55 resolves `information_schema` itself when the session enables it, and
//! offers no way to add tables there. So [`register`] puts a schema provider named
//! `information_schema` in every catalog, turns DataFusion's own resolution off, and lets the
//! catalog's provider answer instead: it serves DataFusion's tables (delegating to its
//! `InformationSchemaProvider`, so `SHOW TABLES`, `SHOW COLUMNS` and `SHOW ALL` keep working),
//! lists the constraint tables in `information_schema.tables`, and builds the constraint
//! tables from the registered contracts whenever they are read.
//!
//! What a crate user may do afterwards keeps it whole:
//! - a catalog registered later gets its `information_schema` too: the session's catalog
//!   list is wrapped once ([`ContractCatalogs`]), and installs it in every catalog added;
//! - table functions registered (or removed) later are listed in `routines`: they are read
//!   from the session whenever `information_schema` is read, not copied at registration;
//! - with `datafusion.catalog.information_schema` set back to `true`, DataFusion answers
//!   `information_schema` before any catalog is asked; a relation planner
//!   ([`ContractRelations`]) then plans SQL's `information_schema.<table>` from the catalog's
//!   provider all the same. The `DataFrame` API (`SessionContext::table`) has no such hook:
//!   with the flag on it reads DataFusion's tables only, without the constraint tables.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::task::{Context, Poll, Waker};

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::information_schema::{
    INFORMATION_SCHEMA, INFORMATION_SCHEMA_TABLES, InformationSchemaProvider,
};
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemTable, SchemaProvider, TableFunction, TableProvider,
};
use datafusion::common::{Constraint, Constraints, ResolvedTableReference, TableReference};
use datafusion::datasource::provider_as_source;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::logical_expr::planner::{PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::TableFactor;

use crate::table::{ConstrainedTable, UnionTable};
use crate::validate::validate_all;
use crate::{ConstraintKind, Contract, ContractError, Result};

const TABLE_CONSTRAINTS: &str = "table_constraints";
const KEY_COLUMN_USAGE: &str = "key_column_usage";
const REFERENTIAL_CONSTRAINTS: &str = "referential_constraints";
const CHECK_CONSTRAINTS: &str = "check_constraints";
const CONTRACT_TABLES: [&str; 4] = [TABLE_CONSTRAINTS, KEY_COLUMN_USAGE, REFERENTIAL_CONSTRAINTS, CHECK_CONSTRAINTS];

/// Validates `contracts` as a set, then registers them in `ctx`: primary and unique keys
/// become DataFusion `Constraints` on the relations' table providers, and every contract
/// appears in `information_schema`'s constraint tables. A relation registered again
/// replaces its earlier contract.
///
/// If any contract is invalid, the error names it and nothing is registered. This enables
/// `information_schema` (DataFusion's tables and the constraint tables), served by each
/// catalog, including catalogs registered later: `datafusion.catalog.information_schema`
/// reads `false` afterwards. Setting it back to `true` keeps the constraint tables in SQL
/// (`SELECT ... FROM information_schema.table_constraints`, `SHOW TABLES`), but
/// `SessionContext::table` then reads DataFusion's own `information_schema`, which has none.
///
/// The session's catalog list is wrapped (once) so that catalogs registered later get their
/// `information_schema`; replacing the whole list with `register_catalog_list` afterwards
/// drops it, until `register` is called again.
pub async fn register(ctx: &SessionContext, contracts: &[Contract]) -> Result<()> {
    let validated = validate_all(ctx, contracts).await?;
    let state = ctx.state();
    let internal = |message: String| ContractError::DataFusion {
        relation: INFORMATION_SCHEMA.to_owned(),
        source: DataFusionError::Plan(message),
    };

    // Everything that can fail is decided before anything changes.
    let existing = state.catalog_list().downcast_ref::<ContractCatalogs>().map(|list| Arc::clone(&list.shared));
    let inner = match state.catalog_list().downcast_ref::<ContractCatalogs>() {
        Some(list) => Arc::clone(&list.inner),
        None => Arc::clone(state.catalog_list()),
    };
    let mut contracts_before = None;
    for name in inner.catalog_names() {
        let Some(catalog) = inner.catalog(&name) else { continue };
        if let Some(schema) = catalog.schema(INFORMATION_SCHEMA) {
            match schema.downcast_ref::<ContractSchema>() {
                Some(ours) => contracts_before = contracts_before.or_else(|| Some(ours.shared.registry.snapshot())),
                None => {
                    return Err(internal(format!(
                        "catalog `{name}` already has a schema named `{INFORMATION_SCHEMA}`; contracts cannot be listed there"
                    )));
                }
            }
        }
    }
    let defaults = &state.config_options().catalog;
    let mut wrapped = Vec::new();
    for (contract, validated) in contracts.iter().zip(&validated) {
        let mut constraints: Vec<Constraint> = ConstrainedTable::unwrap(Arc::clone(&validated.provider))
            .constraints()
            .map(|c| c.iter().cloned().collect())
            .unwrap_or_default();
        for (kind, key) in contract.keys() {
            let indices: Vec<usize> = key.iter().filter_map(|c| validated.schema.index_of(c).ok()).collect();
            let constraint = match kind {
                ConstraintKind::PrimaryKey => Constraint::PrimaryKey(indices),
                _ => Constraint::Unique(indices),
            };
            if !constraints.contains(&constraint) {
                constraints.push(constraint);
            }
        }
        let provider: Arc<dyn TableProvider> =
            Arc::new(ConstrainedTable::new(Arc::clone(&validated.provider), Constraints::new_unverified(constraints)));
        let resolved = TableReference::from(contract.relation.as_str())
            .resolve(&defaults.default_catalog, &defaults.default_schema);
        wrapped.push((contract, resolved, provider));
    }

    let dferr = |relation: &str| {
        let relation = relation.to_owned();
        move |source| ContractError::DataFusion { relation, source }
    };
    // The catalog list, wrapped once; every catalog in it, and every one registered later,
    // gets an `information_schema` of its own.
    let shared = if let Some(shared) = existing {
        shared
    } else {
        let list = ContractCatalogs::wrap(Arc::clone(&inner), contracts_before.unwrap_or_default());
        let shared = Arc::clone(&list.shared);
        ctx.register_catalog_list(list);
        shared
    };
    let session = ctx.state_weak_ref();
    let functions: TableFunctions =
        Arc::new(move || session.upgrade().map(|s| s.try_read().map(|s| s.table_functions().clone())));
    *shared.session.write().unwrap_or_else(std::sync::PoisonError::into_inner) = functions;
    for name in inner.catalog_names() {
        if let Some(catalog) = inner.catalog(&name)
            && let Some(installed) = shared.install(Arc::clone(&catalog))
        {
            inner.register_catalog(name, installed);
        }
    }
    // SQL's `information_schema.<table>` is planned from the catalogs even if DataFusion's
    // own resolution is turned back on.
    let planner =
        Arc::clone(shared.planner.get_or_init(|| Arc::new(ContractRelations { shared: Arc::downgrade(&shared) })));
    let planned_here = state.relation_planners().iter().any(|p| same(p, &planner));
    if !planned_here {
        ctx.register_relation_planner(planner).map_err(dferr(INFORMATION_SCHEMA))?;
    }
    for (contract, resolved, provider) in wrapped {
        let relation = contract.relation.as_str();
        ctx.deregister_table(relation).map_err(dferr(relation))?;
        ctx.register_table(relation, provider).map_err(dferr(relation))?;
        shared.registry.insert(&resolved, contract.clone());
    }
    ctx.state_ref().write().config_mut().options_mut().catalog.information_schema = false;
    Ok(())
}

/// Whether two planners are the same object (their data pointers, not their vtables).
fn same(a: &Arc<dyn RelationPlanner>, b: &Arc<dyn RelationPlanner>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

/// The contracts registered in one session, by resolved relation.
#[derive(Debug, Default)]
struct Registry {
    contracts: RwLock<BTreeMap<(String, String, String), Contract>>,
}

impl Registry {
    fn with(contracts: BTreeMap<(String, String, String), Contract>) -> Self {
        Self { contracts: RwLock::new(contracts) }
    }

    fn insert(&self, relation: &ResolvedTableReference, contract: Contract) {
        let key = (relation.catalog.to_string(), relation.schema.to_string(), relation.table.to_string());
        self.contracts.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, contract);
    }

    fn snapshot(&self) -> BTreeMap<(String, String, String), Contract> {
        self.contracts.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// Reads the table functions of a session: `None` once the session is gone, `Some(None)`
/// while it is locked for a change (never waited for: the reader may hold that lock).
type TableFunctions = Arc<dyn Fn() -> Option<Option<HashMap<String, Arc<TableFunction>>>> + Send + Sync>;

/// What every catalog's `information_schema` of one session shares.
struct Shared {
    /// The session's (wrapped) catalog list; weak, since it holds this.
    catalogs: Weak<dyn CatalogProviderList>,
    /// The session whose table functions `routines` lists: the last one `register` was
    /// called on.
    session: RwLock<TableFunctions>,
    /// The table functions read last.
    functions: RwLock<HashMap<String, Arc<TableFunction>>>,
    registry: Registry,
    /// The relation planner serving SQL when DataFusion's own resolution is on.
    planner: OnceLock<Arc<dyn RelationPlanner>>,
}
impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").field("registry", &self.registry).finish_non_exhaustive()
    }
}

impl Shared {
    /// Gives `catalog` this session's `information_schema`: registered in it, or, when the
    /// catalog does not take new schemas, by wrapping it (returned, to replace it). A catalog
    /// with an `information_schema` of its own keeps it.
    fn install(self: &Arc<Self>, catalog: Arc<dyn CatalogProvider>) -> Option<Arc<dyn CatalogProvider>> {
        if let Some(schema) = catalog.schema(INFORMATION_SCHEMA) {
            match schema.downcast_ref::<ContractSchema>() {
                Some(ours) if !Arc::ptr_eq(&ours.shared, self) => {}
                _ => return None,
            }
        }
        let schema: Arc<dyn SchemaProvider> = Arc::new(ContractSchema { shared: Arc::clone(self) });
        match catalog.register_schema(INFORMATION_SCHEMA, Arc::clone(&schema)) {
            Ok(_) => None,
            Err(_) => Some(Arc::new(WithInformationSchema { inner: catalog, schema })),
        }
    }

    /// The session's table functions as they are now; the last ones read while the session
    /// is busy being changed, or empty once it is gone.
    fn table_functions(&self) -> HashMap<String, Arc<TableFunction>> {
        let read = Arc::clone(&self.session.read().unwrap_or_else(std::sync::PoisonError::into_inner));
        let mut cache = self.functions.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        match read() {
            Some(Some(now)) => *cache = now,
            Some(None) => {}
            None => cache.clear(),
        }
        cache.clone()
    }

    /// Table `table` of `catalog`'s `information_schema`, when that schema is this session's.
    fn table(&self, catalog: &str, table: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some(schema) = self
            .catalogs
            .upgrade()
            .and_then(|catalogs| catalogs.catalog(catalog))
            .and_then(|catalog| catalog.schema(INFORMATION_SCHEMA))
        else {
            return Ok(None);
        };
        match schema.downcast_ref::<ContractSchema>() {
            Some(ours) => ours.table_now(table),
            None => Ok(None),
        }
    }
}

/// The session's catalog list, installing `information_schema` in every catalog registered.
#[derive(Debug)]
struct ContractCatalogs {
    inner: Arc<dyn CatalogProviderList>,
    shared: Arc<Shared>,
}

impl ContractCatalogs {
    /// Wraps `inner`, starting with the contracts registered before (if any).
    fn wrap(inner: Arc<dyn CatalogProviderList>, contracts: BTreeMap<(String, String, String), Contract>) -> Arc<Self> {
        Arc::new_cyclic(|me: &Weak<Self>| {
            let catalogs: Weak<dyn CatalogProviderList> = Weak::<Self>::clone(me);
            let nothing_yet: TableFunctions = Arc::new(|| None);
            let shared = Shared {
                catalogs,
                session: RwLock::new(nothing_yet),
                functions: RwLock::default(),
                registry: Registry::with(contracts),
                planner: OnceLock::new(),
            };
            Self { inner, shared: Arc::new(shared) }
        })
    }
}

impl CatalogProviderList for ContractCatalogs {
    fn register_catalog(&self, name: String, catalog: Arc<dyn CatalogProvider>) -> Option<Arc<dyn CatalogProvider>> {
        let catalog = self.shared.install(Arc::clone(&catalog)).unwrap_or(catalog);
        self.inner.register_catalog(name, catalog)
    }

    fn catalog_names(&self) -> Vec<String> {
        self.inner.catalog_names()
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        self.inner.catalog(name)
    }
}

/// A catalog that does not take new schemas, with `information_schema` added.
#[derive(Debug)]
struct WithInformationSchema {
    inner: Arc<dyn CatalogProvider>,
    schema: Arc<dyn SchemaProvider>,
}

impl CatalogProvider for WithInformationSchema {
    fn schema_names(&self) -> Vec<String> {
        let mut names = self.inner.schema_names();
        if !names.iter().any(|n| n == INFORMATION_SCHEMA) {
            names.push(INFORMATION_SCHEMA.to_owned());
        }
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if name == INFORMATION_SCHEMA { Some(Arc::clone(&self.schema)) } else { self.inner.schema(name) }
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> DfResult<Option<Arc<dyn SchemaProvider>>> {
        self.inner.register_schema(name, schema)
    }

    fn deregister_schema(&self, name: &str, cascade: bool) -> DfResult<Option<Arc<dyn SchemaProvider>>> {
        self.inner.deregister_schema(name, cascade)
    }
}

/// Plans SQL's `[catalog.]information_schema.<table>` from the catalog's `information_schema`
/// when `datafusion.catalog.information_schema` is on, where DataFusion would otherwise
/// answer with its own tables and no constraint tables.
#[derive(Debug)]
struct ContractRelations {
    shared: Weak<Shared>,
}

impl ContractRelations {
    /// The scan of `relation`, with its alias, when it is an `information_schema` table
    /// this session serves.
    fn served(
        &self,
        relation: &TableFactor,
        context: &dyn RelationPlannerContext,
    ) -> DfResult<Option<PlannedRelation>> {
        let options = &context.context_provider().options().catalog;
        let TableFactor::Table { name, alias, args: None, .. } = relation else { return Ok(None) };
        let Some(shared) = self.shared.upgrade() else { return Ok(None) };
        if !options.information_schema {
            return Ok(None);
        }
        let reference = context.object_name_to_table_reference(name.clone())?;
        let resolved = reference.clone().resolve(&options.default_catalog, &options.default_schema);
        if resolved.schema.as_ref() != INFORMATION_SCHEMA {
            return Ok(None);
        }
        let Some(table) = shared.table(&resolved.catalog, &resolved.table)? else { return Ok(None) };
        let plan = LogicalPlanBuilder::scan(reference, provider_as_source(table), None)?.build()?;
        Ok(Some(PlannedRelation::new(plan, alias.clone())))
    }
}

impl RelationPlanner for ContractRelations {
    fn plan_relation(
        &self,
        relation: TableFactor,
        context: &mut dyn RelationPlannerContext,
    ) -> DfResult<RelationPlanning> {
        Ok(match self.served(&relation, context)? {
            Some(planned) => RelationPlanning::Planned(Box::new(planned)),
            None => RelationPlanning::Original(Box::new(relation)),
        })
    }
}

/// The `information_schema` of one catalog: DataFusion's tables and the constraint tables.
struct ContractSchema {
    shared: Arc<Shared>,
}

impl fmt::Debug for ContractSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContractSchema").field("shared", &self.shared).finish()
    }
}

impl ContractSchema {
    /// Table `name`, built now from the catalogs, the session's functions and the contracts.
    fn table_now(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some(catalogs) = self.shared.catalogs.upgrade() else { return Ok(None) };
        let registry = &self.shared.registry;
        let name = name.to_ascii_lowercase();
        let batch = match name.as_str() {
            TABLE_CONSTRAINTS => Rows::of(registry).table_constraints()?,
            KEY_COLUMN_USAGE => Rows::of(registry).key_column_usage()?,
            REFERENTIAL_CONSTRAINTS => Rows::of(registry).referential_constraints()?,
            CHECK_CONSTRAINTS => Rows::of(registry).check_constraints()?,
            _ => {
                let own = InformationSchemaProvider::new(Arc::clone(&catalogs))
                    .with_table_functions(self.shared.table_functions());
                // DataFusion's provider builds its tables without waiting on anything.
                let Some(table) = ready(own.table(&name)).ok_or_else(|| {
                    DataFusionError::Internal(format!("information_schema.{name} is not ready without waiting"))
                })??
                else {
                    return Ok(None);
                };
                if name != "tables" {
                    return Ok(Some(table));
                }
                // `information_schema.tables` (and so `SHOW TABLES`) lists the constraint
                // tables too, in every catalog that serves them.
                let schema = table.schema();
                let (mut catalog, mut tables) = (Vec::new(), Vec::new());
                for name in catalogs.catalog_names() {
                    let served = catalogs
                        .catalog(&name)
                        .and_then(|c| c.schema(INFORMATION_SCHEMA))
                        .is_some_and(|s| s.downcast_ref::<ContractSchema>().is_some());
                    if served {
                        for table in CONTRACT_TABLES {
                            catalog.push(name.clone());
                            tables.push(table);
                        }
                    }
                }
                let n = tables.len();
                let extra = RecordBatch::try_new(
                    Arc::clone(&schema),
                    vec![
                        strings(catalog.iter().map(String::as_str).collect()),
                        strings(vec![INFORMATION_SCHEMA; n]),
                        strings(tables),
                        strings(vec!["VIEW"; n]),
                    ],
                )?;
                let extra: Arc<dyn TableProvider> =
                    Arc::new(MemTable::try_new(Arc::clone(&schema), vec![vec![extra]])?);
                return Ok(Some(Arc::new(UnionTable::new(schema, vec![table, extra]))));
            }
        };
        Ok(Some(Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]])?)))
    }
}

/// The output of `future` if it completes without waiting, else `None`.
fn ready<T>(future: impl Future<Output = T>) -> Option<T> {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => Some(value),
        Poll::Pending => None,
    }
}

#[async_trait]
impl SchemaProvider for ContractSchema {
    fn table_names(&self) -> Vec<String> {
        INFORMATION_SCHEMA_TABLES.iter().chain(&CONTRACT_TABLES).map(|t| (*t).to_owned()).collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        self.table_now(name)
    }

    fn table_exist(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        INFORMATION_SCHEMA_TABLES.iter().chain(&CONTRACT_TABLES).any(|t| *t == name)
    }
}

/// One constraint, named as PostgreSQL names them.
struct Named<'a> {
    catalog: &'a str,
    schema: &'a str,
    table: &'a str,
    name: String,
    /// `PRIMARY KEY`, `UNIQUE`, `FOREIGN KEY` or `CHECK`.
    kind: &'static str,
    columns: Vec<&'a String>,
    /// For a foreign key: what it references, and the referenced key if it was registered.
    references: Option<(&'a crate::ForeignKey, Option<Referenced>)>,
}

/// A registered key that a foreign key references.
struct Referenced {
    catalog: String,
    schema: String,
    name: String,
    /// The key's columns, in key order.
    columns: Vec<String>,
}

/// Gives each constraint of a table a distinct name, numbering repeats as PostgreSQL does.
#[derive(Default)]
struct Names(BTreeSet<String>);

impl Names {
    fn take(&mut self, base: &str) -> String {
        let mut name = base.to_owned();
        let mut n = 0;
        while !self.0.insert(name.clone()) {
            n += 1;
            name = format!("{base}{n}");
        }
        name
    }

    /// The names of `contract`'s keys on `table`, in declaration order; taken first, so they
    /// do not depend on the other constraints.
    fn keys<'a>(&mut self, table: &str, contract: &'a Contract) -> Vec<(&'static str, &'a [String], String)> {
        contract
            .keys()
            .map(|(kind, key)| {
                if kind == ConstraintKind::PrimaryKey {
                    ("PRIMARY KEY", key, self.take(&format!("{table}_pkey")))
                } else {
                    ("UNIQUE", key, self.take(&format!("{table}_{}_key", key.join("_"))))
                }
            })
            .collect()
    }
}

/// The constraints of every registered contract, named.
struct Rows {
    contracts: BTreeMap<(String, String, String), Contract>,
}

impl Rows {
    fn of(registry: &Registry) -> Self {
        Self { contracts: registry.snapshot() }
    }

    fn named(&self) -> Vec<Named<'_>> {
        let mut out = Vec::new();
        for ((catalog, schema, table), contract) in &self.contracts {
            let mut names = Names::default();
            for (kind, key, name) in names.keys(table, contract) {
                out.push(Named { catalog, schema, table, name, kind, columns: key.iter().collect(), references: None });
            }
            for fk in &contract.foreign_keys {
                let name = names.take(&format!("{table}_{}_fkey", fk.columns.join("_")));
                let referenced = self.referenced(catalog, schema, fk);
                out.push(Named {
                    catalog,
                    schema,
                    table,
                    name,
                    kind: "FOREIGN KEY",
                    columns: fk.columns.iter().collect(),
                    references: Some((fk, referenced)),
                });
            }
            for column in contract.not_null_columns() {
                let name = names.take(&format!("{table}_{column}_not_null"));
                out.push(Named {
                    catalog,
                    schema,
                    table,
                    name,
                    kind: "CHECK",
                    columns: vec![column],
                    references: None,
                });
            }
        }
        out
    }

    /// The key constraint a foreign key references, when that key was registered as a
    /// contract.
    fn referenced(&self, catalog: &str, schema: &str, fk: &crate::ForeignKey) -> Option<Referenced> {
        let resolved = TableReference::from(fk.references.as_str()).resolve(catalog, schema);
        let key = (resolved.catalog.to_string(), resolved.schema.to_string(), resolved.table.to_string());
        let contract = self.contracts.get(&key)?;
        let wanted: BTreeSet<&String> = fk.referenced_columns.iter().collect();
        let (_, columns, name) = Names::default()
            .keys(&key.2, contract)
            .into_iter()
            .find(|(_, columns, _)| columns.len() == wanted.len() && columns.iter().all(|c| wanted.contains(c)))?;
        Some(Referenced { catalog: key.0, schema: key.1, name, columns: columns.to_vec() })
    }

    fn table_constraints(&self) -> DfResult<RecordBatch> {
        let named = self.named();
        let n = named.len();
        let schema = schema(&[
            ("constraint_catalog", false),
            ("constraint_schema", false),
            ("constraint_name", false),
            ("table_catalog", false),
            ("table_schema", false),
            ("table_name", false),
            ("constraint_type", false),
            ("is_deferrable", false),
            ("initially_deferred", false),
            ("enforced", false),
            ("nulls_distinct", true),
        ]);
        let nulls_distinct: Vec<Option<&str>> = named.iter().map(|c| (c.kind == "UNIQUE").then_some("YES")).collect();
        Ok(RecordBatch::try_new(
            schema,
            vec![
                strings(named.iter().map(|c| c.catalog).collect()),
                strings(named.iter().map(|c| c.schema).collect()),
                strings(named.iter().map(|c| c.name.as_str()).collect()),
                strings(named.iter().map(|c| c.catalog).collect()),
                strings(named.iter().map(|c| c.schema).collect()),
                strings(named.iter().map(|c| c.table).collect()),
                strings(named.iter().map(|c| c.kind).collect()),
                strings(vec!["NO"; n]),
                strings(vec!["NO"; n]),
                // Checked by queries, not enforced on every write.
                strings(vec!["NO"; n]),
                Arc::new(StringArray::from(nulls_distinct)),
            ],
        )?)
    }

    fn key_column_usage(&self) -> DfResult<RecordBatch> {
        let named = self.named();
        let schema = Arc::new(Schema::new(
            [
                "constraint_catalog",
                "constraint_schema",
                "constraint_name",
                "table_catalog",
                "table_schema",
                "table_name",
                "column_name",
            ]
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, false))
            .chain([
                Field::new("ordinal_position", DataType::UInt64, false),
                Field::new("position_in_unique_constraint", DataType::UInt64, true),
            ])
            .collect::<Vec<_>>(),
        ));
        let mut rows: Vec<(&Named, &String, u64, Option<u64>)> = Vec::new();
        for c in named.iter().filter(|c| c.kind != "CHECK") {
            for (i, column) in c.columns.iter().enumerate() {
                // The position of the referenced column within the referenced key.
                let position = c.references.as_ref().and_then(|(fk, key)| {
                    let target = &fk.referenced_columns[i];
                    key.as_ref()?.columns.iter().position(|k| k == target).map(|p| p as u64 + 1)
                });
                rows.push((c, column, i as u64 + 1, position));
            }
        }
        Ok(RecordBatch::try_new(
            schema,
            vec![
                strings(rows.iter().map(|r| r.0.catalog).collect()),
                strings(rows.iter().map(|r| r.0.schema).collect()),
                strings(rows.iter().map(|r| r.0.name.as_str()).collect()),
                strings(rows.iter().map(|r| r.0.catalog).collect()),
                strings(rows.iter().map(|r| r.0.schema).collect()),
                strings(rows.iter().map(|r| r.0.table).collect()),
                strings(rows.iter().map(|r| r.1.as_str()).collect()),
                Arc::new(UInt64Array::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
                Arc::new(UInt64Array::from(rows.iter().map(|r| r.3).collect::<Vec<_>>())),
            ],
        )?)
    }

    fn referential_constraints(&self) -> DfResult<RecordBatch> {
        let named = self.named();
        let fks: Vec<&Named> = named.iter().filter(|c| c.kind == "FOREIGN KEY").collect();
        let n = fks.len();
        let schema = schema(&[
            ("constraint_catalog", false),
            ("constraint_schema", false),
            ("constraint_name", false),
            ("unique_constraint_catalog", true),
            ("unique_constraint_schema", true),
            ("unique_constraint_name", true),
            ("match_option", false),
            ("update_rule", false),
            ("delete_rule", false),
        ]);
        let key = |f: fn(&Referenced) -> &str| -> ArrayRef {
            Arc::new(StringArray::from(
                fks.iter().map(|c| c.references.as_ref().and_then(|(_, k)| k.as_ref()).map(f)).collect::<Vec<_>>(),
            ))
        };
        Ok(RecordBatch::try_new(
            schema,
            vec![
                strings(fks.iter().map(|c| c.catalog).collect()),
                strings(fks.iter().map(|c| c.schema).collect()),
                strings(fks.iter().map(|c| c.name.as_str()).collect()),
                key(|k| k.catalog.as_str()),
                key(|k| k.schema.as_str()),
                key(|k| k.name.as_str()),
                // MATCH SIMPLE: a row with a null in any foreign-key column is not checked.
                strings(vec!["NONE"; n]),
                strings(vec!["NO ACTION"; n]),
                strings(vec!["NO ACTION"; n]),
            ],
        )?)
    }

    fn check_constraints(&self) -> DfResult<RecordBatch> {
        let named = self.named();
        let checks: Vec<&Named> = named.iter().filter(|c| c.kind == "CHECK").collect();
        let schema = schema(&[
            ("constraint_catalog", false),
            ("constraint_schema", false),
            ("constraint_name", false),
            ("check_clause", false),
        ]);
        let clauses: Vec<String> = checks.iter().map(|c| format!("{} IS NOT NULL", c.columns[0])).collect();
        Ok(RecordBatch::try_new(
            schema,
            vec![
                strings(checks.iter().map(|c| c.catalog).collect()),
                strings(checks.iter().map(|c| c.schema).collect()),
                strings(checks.iter().map(|c| c.name.as_str()).collect()),
                strings(clauses.iter().map(String::as_str).collect()),
            ],
        )?)
    }
}

fn schema(fields: &[(&str, bool)]) -> SchemaRef {
    Arc::new(Schema::new(
        fields.iter().map(|(n, nullable)| Field::new(*n, DataType::Utf8, *nullable)).collect::<Vec<_>>(),
    ))
}

fn strings(values: Vec<&str>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}
