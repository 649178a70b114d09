//! Diffs of two bundles, or of two runs: which views changed, through which ingredient of
//! their fingerprint, how their schema and settings changed, the plan text diff, and a
//! category in the manner of SQLMesh.
//!
//! A view whose own plan changed is categorized directly:
//! - `breaking`: a column was removed or retyped, or the plan changed beyond adding columns;
//! - `non_breaking`: columns were only added: the existing columns keep their lineage, the
//!   inspected columns are the same, and the optimized plans differ only in `Projection` and
//!   `TableScan` lines;
//! - `metadata`: the plan is the same and only settings or the environment changed.
//!
//! Between two runs that both stored their environment, the diff also names what changed
//! in it: settings of `df_settings` (old and new value), columns of `columns` added, removed
//! or retyped per relation, functions of `routines` added or removed, and every
//! `information_schema` table whose content changed. Per view, it names the writer options
//! that changed between the two runs' writes.
//!
//! A view that changed only through its upstream is `indirect`, and takes the worst category
//! of the upstream views that changed; new data in a source counts as `non_breaking`. That
//! includes a view whose Substrait changed while its optimized plan and schema did not:
//! Substrait records the whole schema of each relation read, which an upstream change alters.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use similar::TextDiff;

use crate::{Column, Environment, Fingerprint, PlanBundle, Result, RunRecord, Store};

/// How much a change matters to readers of the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Nothing readers see changed.
    Metadata,
    /// Readers see new columns only.
    NonBreaking,
    /// Readers may see different values or lose columns.
    Breaking,
}

/// Whether a view is in both runs, and whether its fingerprint changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewChange {
    /// Only in the newer run.
    Added,
    /// Only in the older run.
    Removed,
    /// In both, with different fingerprints.
    Changed,
    /// In both, with the same fingerprint.
    Unchanged,
}

/// What changed in one view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewDiff {
    /// The view.
    pub name: String,
    /// Whether it changed.
    pub change: ViewChange,
    /// The fingerprint ingredients that changed: `plan`, `settings`, `environment`, `upstream`.
    pub ingredients: Vec<String>,
    /// Output columns added, removed or retyped.
    pub schema: SchemaChange,
    /// Settings that changed.
    pub settings: Vec<ChangedSetting>,
    /// A unified diff of the optimized plans; empty when they are the same.
    pub plan_diff: String,
    /// How much the change matters; `None` when nothing changed.
    pub category: Option<Category>,
    /// Whether the view changed only through its upstream.
    pub indirect: bool,
    /// Writer options (format options and knobs) that changed between the two runs' writes
    /// of its output; empty unless both runs wrote it.
    #[serde(default)]
    pub write_options: Vec<ChangedSetting>,
}

/// Output columns added, removed or retyped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaChange {
    /// Columns only in the newer plan.
    pub added: Vec<Column>,
    /// Columns only in the older plan.
    pub removed: Vec<Column>,
    /// Columns in both whose type or nullability changed.
    pub retyped: Vec<Retyped>,
}

impl SchemaChange {
    /// Whether the schemas are the same.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.retyped.is_empty()
    }
}

/// A column whose type or nullability changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retyped {
    /// The column.
    pub name: String,
    /// Before.
    pub from: Column,
    /// After.
    pub to: Column,
}

/// A setting that changed, appeared or disappeared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedSetting {
    /// The setting's key.
    pub key: String,
    /// Before, if it was set.
    pub from: Option<String>,
    /// After, if it is set.
    pub to: Option<String>,
}

/// What changed between two runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diff {
    /// The older run.
    pub from: String,
    /// The newer run.
    pub to: String,
    /// Every view of either run, by name.
    pub views: Vec<ViewDiff>,
    /// What changed in the environment, when both runs stored theirs.
    #[serde(default)]
    pub environment: Option<EnvironmentDiff>,
}

/// What changed from one environment snapshot to another.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentDiff {
    /// The older snapshot's fingerprint.
    pub from: Fingerprint,
    /// The newer snapshot's fingerprint.
    pub to: Fingerprint,
    /// The `information_schema` tables whose content changed, appeared or disappeared.
    pub tables: Vec<String>,
    /// Settings of `df_settings` that changed, appeared or disappeared.
    pub settings: Vec<ChangedSetting>,
    /// Columns of a relation added, removed or retyped, from `columns`.
    pub columns: Vec<ChangedColumn>,
    /// Functions only in the newer snapshot, from `routines`.
    pub functions_added: Vec<String>,
    /// Functions only in the older snapshot, from `routines`.
    pub functions_removed: Vec<String>,
}

impl EnvironmentDiff {
    /// Whether the two snapshots hold the same content.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
}

/// A column of a relation that appeared, disappeared or changed type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedColumn {
    /// The relation, qualified by its catalog and schema where they are not the defaults.
    pub relation: String,
    /// The column.
    pub column: String,
    /// Its type before, if it existed.
    pub from: Option<String>,
    /// Its type after, if it exists.
    pub to: Option<String>,
}

/// What changed in a view from `old` to `new`, categorized as a direct change. A change of the
/// upstream alone is categorized by [`diff_runs`], which knows the upstream views.
pub fn diff_bundles(old: &PlanBundle, new: &PlanBundle) -> ViewDiff {
    let ingredients: Vec<String> =
        new.fingerprint.ingredients.changed_from(&old.fingerprint.ingredients).into_iter().map(str::to_owned).collect();
    let schema = schema_change(&old.schema, &new.schema);
    let settings = settings_change(&old.fingerprint.settings, &new.fingerprint.settings);
    let plan_diff = if old.optimized == new.optimized {
        String::new()
    } else {
        TextDiff::from_lines(&old.optimized, &new.optimized).unified_diff().context_radius(2).to_string()
    };
    let changed = |name: &str| ingredients.iter().any(|i| i == name);
    // Substrait records the full schema of every relation read, so a column added upstream
    // changes the bytes of a reader whose own plan is the same: that is an upstream change.
    let own_plan_changed = changed("plan") && (old.optimized != new.optimized || !schema.is_empty());
    let category = if own_plan_changed {
        if !schema.removed.is_empty() || !schema.retyped.is_empty() || !only_columns_added(old, new, &schema) {
            Some(Category::Breaking)
        } else {
            Some(Category::NonBreaking)
        }
    } else if changed("settings") || changed("environment") {
        Some(Category::Metadata)
    } else {
        None
    };
    let change = if ingredients.is_empty() { ViewChange::Unchanged } else { ViewChange::Changed };
    let indirect = category.is_none() && (changed("upstream") || changed("plan"));
    ViewDiff {
        name: new.view.clone(),
        change,
        ingredients,
        schema,
        settings,
        plan_diff,
        category,
        indirect,
        write_options: Vec::new(),
    }
}

/// What changed in the environment from `old` to `new`.
pub fn diff_environments(old: &Environment, new: &Environment) -> EnvironmentDiff {
    let names: BTreeSet<&String> = old.tables.keys().chain(new.tables.keys()).collect();
    let tables = names.into_iter().filter(|n| old.tables.get(*n) != new.tables.get(*n)).cloned().collect();
    let settings = |env: &Environment| -> BTreeMap<String, String> {
        env.values("df_settings", ["name"], "value").into_iter().map(|([k], v)| (k.to_owned(), v.to_owned())).collect()
    };
    let (old_columns, new_columns) = (relation_columns(old), relation_columns(new));
    let keys: BTreeSet<&(String, String)> = old_columns.keys().chain(new_columns.keys()).collect();
    let columns = keys
        .into_iter()
        .filter(|k| old_columns.get(*k) != new_columns.get(*k))
        .map(|key| ChangedColumn {
            relation: key.0.clone(),
            column: key.1.clone(),
            from: old_columns.get(key).cloned(),
            to: new_columns.get(key).cloned(),
        })
        .collect();
    let functions = |env: &Environment| -> BTreeSet<String> {
        env.values("routines", [], "routine_name").into_iter().map(|(_, name)| name.to_owned()).collect()
    };
    let (old_functions, new_functions) = (functions(old), functions(new));
    EnvironmentDiff {
        from: old.fingerprint(),
        to: new.fingerprint(),
        tables,
        settings: settings_change(&settings(old), &settings(new)),
        columns,
        functions_added: new_functions.difference(&old_functions).cloned().collect(),
        functions_removed: old_functions.difference(&new_functions).cloned().collect(),
    }
}

/// The type of every column of every relation in `environment`'s `columns` table, by relation
/// and column. A relation is named by its table, qualified by its schema and catalog where
/// they are not the session's defaults (from `df_settings`).
fn relation_columns(environment: &Environment) -> BTreeMap<(String, String), String> {
    let settings = environment.values("df_settings", ["name"], "value");
    let default = |key: &str| settings.iter().find(|([k], _)| *k == key).map(|(_, v)| *v);
    let (catalog, schema) =
        (default("datafusion.catalog.default_catalog"), default("datafusion.catalog.default_schema"));
    let key = ["table_catalog", "table_schema", "table_name", "column_name"];
    let mut out = BTreeMap::new();
    for ([table_catalog, table_schema, table, column], data_type) in environment.values("columns", key, "data_type") {
        let relation = if Some(table_catalog) != catalog {
            format!("{table_catalog}.{table_schema}.{table}")
        } else if Some(table_schema) != schema {
            format!("{table_schema}.{table}")
        } else {
            table.to_owned()
        };
        out.insert((relation, column.to_owned()), data_type.to_owned());
    }
    out
}

/// What changed from run `from` to run `to`, with the bundles from `store`.
pub fn diff_runs(store: &Store, from: &RunRecord, to: &RunRecord) -> Result<Diff> {
    let old: BTreeMap<&str, _> = from.views.iter().map(|v| (v.name.as_str(), v)).collect();
    let new: BTreeMap<&str, _> = to.views.iter().map(|v| (v.name.as_str(), v)).collect();
    let names: BTreeSet<&str> = old.keys().chain(new.keys()).copied().collect();
    let mut views = BTreeMap::new();
    let mut upstream: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in names {
        let mut diff = match (old.get(name), new.get(name)) {
            (Some(a), Some(b)) => {
                let (older, newer) = (store.bundle(&a.fingerprint)?, store.bundle(&b.fingerprint)?);
                match (older, newer) {
                    (Some(older), Some(newer)) => {
                        upstream.insert(name.to_owned(), newer.fingerprint.upstream.keys().cloned().collect());
                        diff_bundles(&older, &newer)
                    }
                    // Without both bundles, only the fingerprints can be compared.
                    _ => ViewDiff {
                        change: if a.fingerprint == b.fingerprint {
                            ViewChange::Unchanged
                        } else {
                            ViewChange::Changed
                        },
                        category: (a.fingerprint != b.fingerprint).then_some(Category::Breaking),
                        ..bare(name, ViewChange::Changed)
                    },
                }
            }
            (None, Some(_)) => ViewDiff { category: Some(Category::NonBreaking), ..bare(name, ViewChange::Added) },
            (Some(_), None) => ViewDiff { category: Some(Category::Breaking), ..bare(name, ViewChange::Removed) },
            (None, None) => unreachable!("a name comes from one of the runs"),
        };
        if let (Some(Some(a)), Some(Some(b))) =
            (old.get(name).map(|v| v.write.as_ref()), new.get(name).map(|v| v.write.as_ref()))
        {
            diff.write_options = settings_change(&a.options, &b.options);
        }
        views.insert(name.to_owned(), diff);
    }
    // Indirect changes take the worst category of the changed upstream views; views are
    // resolved in dependency order by recursion, and a cycle (impossible in a run) stops it.
    let names: Vec<String> = views.keys().cloned().collect();
    for name in &names {
        let category = indirect_category(name, &views, &upstream, &mut Vec::new());
        if let Some(view) = views.get_mut(name)
            && view.indirect
        {
            view.category = category;
        }
    }
    let environment = match (&from.environment, &to.environment) {
        (Some(a), Some(b)) => match (store.environment(a)?, store.environment(b)?) {
            (Some(a), Some(b)) => Some(diff_environments(&a, &b)),
            _ => None,
        },
        _ => None,
    };
    Ok(Diff { from: from.run_id.clone(), to: to.run_id.clone(), views: views.into_values().collect(), environment })
}

fn indirect_category(
    name: &str,
    views: &BTreeMap<String, ViewDiff>,
    upstream: &BTreeMap<String, Vec<String>>,
    path: &mut Vec<String>,
) -> Option<Category> {
    let view = views.get(name)?;
    if !view.indirect {
        return view.category;
    }
    if path.iter().any(|p| p == name) {
        return None;
    }
    path.push(name.to_owned());
    let worst = upstream
        .get(name)
        .into_iter()
        .flatten()
        .map(|up| match views.get(up) {
            Some(_) => indirect_category(up, views, upstream, path),
            // A source: new data, same schema.
            None => Some(Category::NonBreaking),
        })
        .max()
        .flatten();
    path.pop();
    worst
}

fn bare(name: &str, change: ViewChange) -> ViewDiff {
    ViewDiff {
        name: name.to_owned(),
        change,
        ingredients: Vec::new(),
        schema: SchemaChange::default(),
        settings: Vec::new(),
        plan_diff: String::new(),
        category: None,
        indirect: false,
        write_options: Vec::new(),
    }
}

fn schema_change(old: &[Column], new: &[Column]) -> SchemaChange {
    let find = |columns: &[Column], name: &str| columns.iter().find(|c| c.name == name).cloned();
    let mut change = SchemaChange::default();
    for column in new {
        match find(old, &column.name) {
            None => change.added.push(column.clone()),
            Some(before) if before != *column => {
                change.retyped.push(Retyped { name: column.name.clone(), from: before, to: column.clone() });
            }
            Some(_) => {}
        }
    }
    change.removed = old.iter().filter(|c| find(new, &c.name).is_none()).cloned().collect();
    change
}

fn settings_change(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<ChangedSetting> {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| ChangedSetting { key: k.clone(), from: old.get(k).cloned(), to: new.get(k).cloned() })
        .collect()
}

/// Whether `new` only adds the columns of `schema.added` to `old`.
fn only_columns_added(old: &PlanBundle, new: &PlanBundle, schema: &SchemaChange) -> bool {
    if schema.added.is_empty() || old.lineage.inspected != new.lineage.inspected {
        return false;
    }
    let kept_lineage = old.lineage.columns.iter().all(|before| new.lineage.columns.iter().any(|after| after == before));
    // Indentation shifts when a projection appears or goes; compare the lines themselves.
    let unindented = |plan: &str| plan.lines().map(str::trim_start).collect::<Vec<_>>().join("\n");
    let (before, after) = (unindented(&old.optimized), unindented(&new.optimized));
    let projections_only = TextDiff::from_lines(&before, &after)
        .iter_all_changes()
        .filter(|c| c.tag() != similar::ChangeTag::Equal)
        .all(|c| {
            let line = c.value().trim_start();
            line.starts_with("Projection:") || line.starts_with("TableScan:")
        });
    kept_lineage && projections_only
}
