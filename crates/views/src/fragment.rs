//! Expression fragments: a filter typed by a user, parsed as one expression against a view's
//! schema with DataFusion's `parse_sql_expr`, never concatenated into SQL.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::TreeNode;
use datafusion::logical_expr::{Expr, ExprSchemable};
use datafusion::prelude::DataFrame;

use crate::{Result, ViewError, user_message};

/// Parses `fragment` as a boolean expression over the columns of `df`, the view `view`.
/// Statements, subqueries, unknown columns and non-boolean expressions are errors.
pub fn parse_filter(view: &str, df: &DataFrame, fragment: &str) -> Result<Expr> {
    let error = |message: String| ViewError::Fragment { view: view.to_owned(), fragment: fragment.to_owned(), message };
    let expr = df.parse_sql_expr(fragment).map_err(|e| error(user_message(&e)))?;
    let subquery = expr
        .exists(|e| Ok(matches!(e, Expr::ScalarSubquery(_) | Expr::InSubquery(_) | Expr::Exists(_))))
        .map_err(|e| error(user_message(&e)))?;
    if subquery {
        return Err(error("a filter reads the view's columns only; subqueries are not allowed".to_owned()));
    }
    let data_type = expr.get_type(df.schema()).map_err(|e| error(user_message(&e)))?;
    if !matches!(data_type, DataType::Boolean | DataType::Null) {
        return Err(error(format!("a filter is a boolean expression; this one is a {data_type}")));
    }
    Ok(expr)
}

/// `df` filtered by the user's `fragment` (see [`parse_filter`]). Lazy: nothing executes.
pub fn filter(view: &str, df: DataFrame, fragment: &str) -> Result<DataFrame> {
    let expr = parse_filter(view, &df, fragment)?;
    df.filter(expr).map_err(|e| ViewError::Fragment {
        view: view.to_owned(),
        fragment: fragment.to_owned(),
        message: user_message(&e),
    })
}
