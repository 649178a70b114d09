//! The views of a pipeline, SQL files and templates, registered lazily in dependency order.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use datafusion::prelude::{DataFrame, SessionContext};
use dfpipe_plan_walk::Lineage;

use crate::params::{ListStrategy, ParamValue, register_param_table};
use crate::template::build_template;
use crate::{Result, SqlView, ViewError, ViewTemplate, register_lazy, user_message};

/// The named views of one pipeline. [`ViewRegistry::register`] plans each view once, after
/// the views it names, and registers it as a [`crate::LazyView`]. Nothing executes.
#[derive(Debug, Default)]
pub struct ViewRegistry {
    entries: Vec<ViewSource>,
    index: BTreeMap<String, usize>,
    strategy: ListStrategy,
}

/// One view before planning: a SQL file, or a Rust template with its parameter values.
#[derive(Debug)]
pub enum ViewSource {
    /// A view read from `views/<name>.sql`.
    Sql(Box<SqlView>),
    /// A view built by a template.
    Template {
        /// The template.
        template: Arc<dyn ViewTemplate>,
        /// Its parameter values, checked when it is planned.
        params: BTreeMap<String, ParamValue>,
    },
}

impl ViewSource {
    /// The view's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Sql(v) => v.name(),
            Self::Template { template, .. } => template.name(),
        }
    }

    /// The names this view reads, as far as they are known before planning: those its SQL
    /// names, or those its template declares. Only for ordering the planning.
    pub fn references(&self) -> Vec<String> {
        match self {
            Self::Sql(v) => v.references().to_vec(),
            Self::Template { template, .. } => template.depends_on().unwrap_or_default(),
        }
    }

    /// The dependencies a template declares, to check against its plan; `None` for SQL.
    pub fn declared(&self) -> Option<Vec<String>> {
        match self {
            Self::Sql(_) => None,
            Self::Template { template, .. } => template.depends_on(),
        }
    }

    /// The error of this view's plan failing after [`ViewSource::plan`], while it is
    /// optimized or physically planned: for a SQL view, [`SqlView::planning_error`] (the view,
    /// its file and, where DataFusion gives one, the line and column); for a template, the
    /// template's error. Either reads as [`user_message`] says.
    pub fn planning_error(&self, error: &datafusion::error::DataFusionError) -> ViewError {
        match self {
            Self::Sql(view) => view.planning_error(error),
            Self::Template { template, .. } => {
                ViewError::Template { view: template.name().to_owned(), message: user_message(error) }
            }
        }
    }

    /// The view's lazy plan, with lists read through `strategy`. Nothing executes.
    pub async fn plan(&self, ctx: &SessionContext, strategy: ListStrategy) -> Result<DataFrame> {
        match self {
            Self::Sql(view) => view.plan_with(ctx, strategy).await,
            Self::Template { template, params } => build_template(template.as_ref(), ctx, params, strategy).await,
        }
    }
}

impl ViewRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// How list parameters become relations, for every view of the registry.
    #[must_use]
    pub fn with_list_strategy(mut self, strategy: ListStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Adds a SQL view.
    pub fn add_sql(&mut self, view: SqlView) -> Result<()> {
        self.add(ViewSource::Sql(Box::new(view)))
    }

    /// Adds a template with its parameter values (checked when the registry is registered).
    pub fn add_template<V: Into<ParamValue>>(
        &mut self,
        template: impl ViewTemplate + 'static,
        params: impl IntoIterator<Item = (String, V)>,
    ) -> Result<()> {
        let params = params.into_iter().map(|(k, v)| (k, v.into())).collect();
        self.add(ViewSource::Template { template: Arc::new(template), params })
    }

    /// Adds a view, SQL or template. Names are unique.
    pub fn add(&mut self, entry: ViewSource) -> Result<()> {
        let name = entry.name().to_owned();
        if self.index.contains_key(&name) {
            return Err(ViewError::Duplicate { view: name });
        }
        self.index.insert(name, self.entries.len());
        self.entries.push(entry);
        Ok(())
    }

    /// The views' names, in the order they were added.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(ViewSource::name)
    }

    /// The view named `name`.
    pub fn get(&self, name: &str) -> Option<&ViewSource> {
        self.index.get(name).map(|&id| &self.entries[id])
    }

    /// How many views the registry holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the registry holds no view.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Plans every view once and registers it in `ctx` under its name, lazily: a view is
    /// planned after the views its SQL names or its template declares, in the order views
    /// were added otherwise. Also registers the `param_table` function on `ctx`.
    pub async fn register(&self, ctx: &SessionContext) -> Result<Registered> {
        self.register_with(ctx, |view, df| {
            register_lazy(ctx, view.name(), df.clone())
                .map_err(|e| ViewError::Template { view: view.name().to_owned(), message: user_message(&e) })?;
            Ok(df)
        })
        .await
    }

    /// Plans every view once, in the order of [`ViewRegistry::register`], and hands each
    /// planned view to `register`, which registers it in `ctx` for its readers however the
    /// caller materializes it and returns the plan to keep.
    pub async fn register_with<E, F>(&self, ctx: &SessionContext, mut register: F) -> Result<Registered, E>
    where
        E: From<ViewError>,
        F: FnMut(&ViewSource, DataFrame) -> Result<DataFrame, E>,
    {
        register_param_table(ctx);
        let names: BTreeSet<String> = self.index.keys().cloned().collect();
        let mut views = Vec::with_capacity(self.entries.len());
        for id in self.order()? {
            let entry = &self.entries[id];
            let name = entry.name();
            let df = entry.plan(ctx, self.strategy).await?;
            let lineage = Lineage::of(df.logical_plan())
                .map_err(|e| ViewError::Lineage { view: name.to_owned(), message: e.to_string() })?;
            let view = RegisteredView {
                name: name.to_owned(),
                dataframe: df,
                depends_on: lineage.depends_on,
                declared: entry.declared(),
            };
            let dataframe = register(entry, view.dataframe)?;
            views.push(RegisteredView { dataframe, ..view });
        }
        Ok(Registered { views, names })
    }

    /// A topological order of the entries over their expected names, ties broken by the
    /// order they were added.
    fn order(&self) -> Result<Vec<usize>> {
        let n = self.entries.len();
        let mut waiting = vec![0usize; n];
        let mut readers: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (id, entry) in self.entries.iter().enumerate() {
            let deps: BTreeSet<usize> =
                entry.references().iter().filter_map(|d| self.index.get(d).copied()).filter(|&d| d != id).collect();
            waiting[id] = deps.len();
            for dep in deps {
                readers[dep].push(id);
            }
        }
        let mut ready: BTreeSet<usize> = (0..n).filter(|&id| waiting[id] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(id) = ready.pop_first() {
            order.push(id);
            for &reader in &readers[id] {
                waiting[reader] -= 1;
                if waiting[reader] == 0 {
                    ready.insert(reader);
                }
            }
        }
        if order.len() < n {
            // Every view left waits for another view left: following what each reads from
            // any of them comes back to a view already met, which closes the cycle.
            let next_read = |id: usize| {
                self.entries[id]
                    .references()
                    .iter()
                    .filter_map(|d| self.index.get(d).copied())
                    .find(|&d| d != id && waiting[d] > 0)
            };
            let mut path: Vec<usize> = Vec::new();
            let mut at = (0..n).find(|&id| waiting[id] > 0);
            while let Some(id) = at {
                if let Some(start) = path.iter().position(|&p| p == id) {
                    let mut views: Vec<String> =
                        path[start..].iter().map(|&p| self.entries[p].name().to_owned()).collect();
                    views.push(self.entries[id].name().to_owned());
                    return Err(ViewError::Cycle { views });
                }
                path.push(id);
                at = next_read(id);
            }
            let views = path.iter().map(|&p| self.entries[p].name().to_owned()).collect();
            return Err(ViewError::Cycle { views });
        }
        Ok(order)
    }
}

/// The views of a registry, planned and registered, in planning order.
#[derive(Debug)]
pub struct Registered {
    /// Each view, in the order it was planned.
    pub views: Vec<RegisteredView>,
    names: BTreeSet<String>,
}

impl Registered {
    /// The view `name`.
    pub fn get(&self, name: &str) -> Option<&RegisteredView> {
        self.views.iter().find(|v| v.name == name)
    }

    /// Every template whose declared dependencies differ from what its plan reads.
    pub fn mismatches(&self) -> Vec<DependencyMismatch> {
        self.views.iter().filter_map(|v| v.mismatch(&self.names)).collect()
    }

    /// An error for the first mismatch, if any.
    pub fn check_dependencies(&self) -> Result<()> {
        match self.mismatches().into_iter().next() {
            Some(m) => Err(ViewError::Dependencies(m)),
            None => Ok(()),
        }
    }
}

/// One registered view.
#[derive(Debug)]
pub struct RegisteredView {
    /// Its name.
    pub name: String,
    /// Its lazy plan, as registered.
    pub dataframe: DataFrame,
    /// The relations its plan reads (views and sources), from plan-walk's lineage.
    pub depends_on: Vec<String>,
    /// The dependencies its template declares, if it declares them.
    pub declared: Option<Vec<String>>,
}

impl RegisteredView {
    /// How the declared dependencies differ from the inferred ones. `views` are the names of
    /// the registry's views: reading one of those without declaring it is a mismatch;
    /// reading an undeclared source is not.
    pub fn mismatch(&self, views: &BTreeSet<String>) -> Option<DependencyMismatch> {
        let declared: BTreeSet<&String> = self.declared.as_ref()?.iter().collect();
        let inferred: BTreeSet<&String> = self.depends_on.iter().collect();
        let undeclared: Vec<String> =
            inferred.iter().filter(|d| views.contains(**d) && !declared.contains(*d)).map(|d| (*d).clone()).collect();
        let unread: Vec<String> = declared.iter().filter(|d| !inferred.contains(*d)).map(|d| (*d).clone()).collect();
        (!undeclared.is_empty() || !unread.is_empty()).then(|| DependencyMismatch {
            view: self.name.clone(),
            undeclared,
            unread,
        })
    }
}

/// A template's declared dependencies against those its plan reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyMismatch {
    /// The view.
    pub view: String,
    /// Views the plan reads that the template does not declare.
    pub undeclared: Vec<String>,
    /// Relations the template declares that the plan does not read.
    pub unread: Vec<String>,
}

impl fmt::Display for DependencyMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "view `{}`: declared dependencies differ from the plan's", self.view)?;
        if !self.undeclared.is_empty() {
            write!(f, "; reads but does not declare: {}", self.undeclared.join(", "))?;
        }
        if !self.unread.is_empty() {
            write!(f, "; declares but does not read: {}", self.unread.join(", "))?;
        }
        Ok(())
    }
}
