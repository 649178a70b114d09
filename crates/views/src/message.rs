//! DataFusion's errors as a user reads them: the cause first, without the wrapping of the
//! optimizer and analyzer rules that met it, without the bug-report boilerplate of internal
//! errors (a user's type error often arrives as one), and parser errors as their message.

use datafusion::arrow::error::ArrowError;
use datafusion::common::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;

/// The text a user reads for `error`, met while planning, optimizing or physically planning
/// a view: the innermost cause, after any context that says more than which rule failed.
///
/// - `Optimizer rule 'simplify_expressions' failed`, an analyzer rule's name and DataFusion's
///   plan-invariant checks are dropped: the cause leads.
/// - An internal error is shown as its description, without `Internal error:` and the
///   request to file a bug report.
/// - A parser error is shown as its message, without `SQL error: ParserError("…")`.
/// - Diagnostics, shared errors and collections (their first error) are looked through.
pub fn user_message(error: &DataFusionError) -> String {
    let mut contexts: Vec<&str> = Vec::new();
    let mut cause = error;
    loop {
        cause = match cause {
            DataFusionError::Context(description, inner) => {
                if !is_rule_wrapping(description) {
                    contexts.push(description);
                }
                inner
            }
            DataFusionError::Diagnostic(_, inner) => inner,
            DataFusionError::Shared(inner) => inner,
            DataFusionError::Collection(errors) if !errors.is_empty() => &errors[0],
            DataFusionError::ArrowError(arrow, _) => match arrow.as_ref() {
                ArrowError::ExternalError(inner) => match inner.downcast_ref::<DataFusionError>() {
                    Some(inner) => inner,
                    None => break,
                },
                _ => break,
            },
            DataFusionError::External(inner) => match inner.downcast_ref::<DataFusionError>() {
                Some(inner) => inner,
                None => break,
            },
            _ => break,
        };
    }
    let text = match cause {
        DataFusionError::Internal(description) => without_backtrace(description).to_owned(),
        DataFusionError::SQL(parser, _) => match parser.as_ref() {
            ParserError::ParserError(message) | ParserError::TokenizerError(message) => message.clone(),
            other @ ParserError::RecursionLimitExceeded => other.to_string(),
        },
        other => other.strip_backtrace(),
    };
    let text = without_boilerplate(&text);
    contexts.push(&text);
    contexts.join(": ")
}

/// What DataFusion appends to an internal error's description.
const BUG_REPORT: &str = ".\nThis issue was likely caused by a bug in DataFusion's code. Please help us to resolve \
                          this by filing a bug report in our issue tracker: https://github.com/apache/datafusion/issues";

/// `text` without the internal errors' prefix and bug-report request, which DataFusion also
/// leaves inside messages it builds from other errors (a function's signature mismatch
/// arrives as a planning error quoting an internal one).
fn without_boilerplate(text: &str) -> String {
    text.replace(BUG_REPORT, "").replace("Internal error: ", "").replace(".. ", ". ")
}

/// Whether a context only names the optimizer or analyzer step that met the error.
fn is_rule_wrapping(description: &str) -> bool {
    const STEPS: [&str; 4] =
        ["Optimizer rule '", "Invalid ", "Check optimizer-specific invariants", "Check analyzer-specific invariants"];
    // An analyzer rule wraps its error in its bare name, like `type_coercion`.
    let rule_name = !description.is_empty()
        && description.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    rule_name || STEPS.iter().any(|step| description.starts_with(step))
}

fn without_backtrace(text: &str) -> &str {
    text.split(DataFusionError::BACK_TRACE_SEP).next().unwrap_or(text)
}
