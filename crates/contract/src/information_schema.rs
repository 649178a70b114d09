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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, RwLock, Weak};

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::information_schema::{
    INFORMATION_SCHEMA, INFORMATION_SCHEMA_TABLES, InformationSchemaProvider,
};
use datafusion::catalog::{CatalogProviderList, MemTable, SchemaProvider, TableFunction, TableProvider};
use datafusion::common::{Constraint, Constraints, ResolvedTableReference, TableReference};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::prelude::SessionContext;

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
/// `information_schema` (DataFusion's tables and the constraint tables), served by the
/// catalog: `datafusion.catalog.information_schema` reads `false` afterwards, because setting
/// it back to `true` would hide the constraint tables behind DataFusion's own schema.
pub async fn register(ctx: &SessionContext, contracts: &[Contract]) -> Result<()> {
    let validated = validate_all(ctx, contracts).await?;
    let state = ctx.state();
    let catalogs = Arc::clone(state.catalog_list());
    let internal = |message: String| ContractError::DataFusion {
        relation: INFORMATION_SCHEMA.to_owned(),
        source: DataFusionError::Plan(message),
    };

    // Everything that can fail is decided before anything changes.
    let mut registry = None;
    let mut missing = Vec::new();
    for name in catalogs.catalog_names() {
        let Some(catalog) = catalogs.catalog(&name) else { continue };
        match catalog.schema(INFORMATION_SCHEMA) {
            Some(schema) => match schema.downcast_ref::<ContractSchema>() {
                Some(ours) => registry = Some(Arc::clone(&ours.registry)),
                None => {
                    return Err(internal(format!(
                        "catalog `{name}` already has a schema named `{INFORMATION_SCHEMA}`; contracts cannot be listed there"
                    )));
                }
            },
            None => missing.push(catalog),
        }
    }
    let registry = registry.unwrap_or_default();
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
    for catalog in missing {
        let schema = ContractSchema {
            catalogs: Arc::downgrade(&catalogs),
            table_functions: state.table_functions().clone(),
            registry: Arc::clone(&registry),
        };
        catalog.register_schema(INFORMATION_SCHEMA, Arc::new(schema)).map_err(dferr(INFORMATION_SCHEMA))?;
    }
    for (contract, resolved, provider) in wrapped {
        let relation = contract.relation.as_str();
        ctx.deregister_table(relation).map_err(dferr(relation))?;
        ctx.register_table(relation, provider).map_err(dferr(relation))?;
        registry.insert(&resolved, contract.clone());
    }
    ctx.state_ref().write().config_mut().options_mut().catalog.information_schema = false;
    Ok(())
}

/// The contracts registered in one session, by resolved relation.
#[derive(Debug, Default)]
struct Registry {
    contracts: RwLock<BTreeMap<(String, String, String), Contract>>,
}

impl Registry {
    fn insert(&self, relation: &ResolvedTableReference, contract: Contract) {
        let key = (relation.catalog.to_string(), relation.schema.to_string(), relation.table.to_string());
        self.contracts.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, contract);
    }

    fn snapshot(&self) -> BTreeMap<(String, String, String), Contract> {
        self.contracts.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// The `information_schema` of one catalog: DataFusion's tables and the constraint tables.
struct ContractSchema {
    /// The session's catalogs; weak, since this schema is one of them.
    catalogs: Weak<dyn CatalogProviderList>,
    table_functions: HashMap<String, Arc<TableFunction>>,
    registry: Arc<Registry>,
}

impl fmt::Debug for ContractSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContractSchema").field("registry", &self.registry).finish_non_exhaustive()
    }
}

#[async_trait]
impl SchemaProvider for ContractSchema {
    fn table_names(&self) -> Vec<String> {
        INFORMATION_SCHEMA_TABLES.iter().chain(&CONTRACT_TABLES).map(|t| (*t).to_owned()).collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some(catalogs) = self.catalogs.upgrade() else { return Ok(None) };
        let name = name.to_ascii_lowercase();
        let batch = match name.as_str() {
            TABLE_CONSTRAINTS => Rows::of(&self.registry).table_constraints()?,
            KEY_COLUMN_USAGE => Rows::of(&self.registry).key_column_usage()?,
            REFERENTIAL_CONSTRAINTS => Rows::of(&self.registry).referential_constraints()?,
            CHECK_CONSTRAINTS => Rows::of(&self.registry).check_constraints()?,
            _ => {
                let own = InformationSchemaProvider::new(Arc::clone(&catalogs))
                    .with_table_functions(self.table_functions.clone());
                let Some(table) = own.table(&name).await? else { return Ok(None) };
                if name != "tables" {
                    return Ok(Some(table));
                }
                // `information_schema.tables` (and so `SHOW TABLES`) lists the constraint tables too.
                let schema = table.schema();
                let (mut catalog, mut tables) = (Vec::new(), Vec::new());
                for name in catalogs.catalog_names() {
                    for table in CONTRACT_TABLES {
                        catalog.push(name.clone());
                        tables.push(table);
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
