//! One declared aggregation, resolved and type-checked: what `plan` checks and every job runs.

use super::function::{Function, OutputType};
use super::state::{Output, State};
use super::window::Window;
use crate::error::Result;
use crate::online::FeatureValue;
use crate::registry::AggregationSpec;
use crate::signature::DataType;

/// An aggregation: a function over a column within a window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aggregation {
    /// Its name: the feature's name.
    pub name: String,
    /// The function.
    pub function: Function,
    /// The aggregated column; `None` for `count` of rows.
    pub column: Option<String>,
    /// The column's type (`None` without a column).
    pub input: Option<DataType>,
    /// The window.
    pub window: Window,
    /// What it returns.
    pub output: OutputType,
}

impl Aggregation {
    /// Resolves a declaration against the columns it can read (`column_type` answers a
    /// column's type, `None` for a column that does not exist; `columns` lists them for the
    /// message). The error is one sentence naming the aggregation, the column and what was
    /// expected; the caller prefixes the view.
    pub fn resolve(
        spec: &AggregationSpec,
        column_type: impl Fn(&str) -> Option<DataType>,
        columns: &[String],
    ) -> std::result::Result<Self, String> {
        let at = format!("aggregation `{}`", spec.name);
        let function = Function::parse(&spec.function, spec.k)
            .map_err(|e| format!("{at}: {}", e.message()))?;
        let window =
            Window::parse(&spec.window).map_err(|e| format!("{at}: window: {}", e.message()))?;
        let (column, input) = match &spec.column {
            None if function.column_optional() => (None, None),
            None => {
                return Err(format!(
                    "{at}: function `{}` needs a `column` to aggregate",
                    function.name()
                ));
            }
            Some(column) => match column_type(column) {
                Some(t) => (Some(column.clone()), Some(t)),
                None => {
                    return Err(format!(
                        "{at}: column `{column}` is not among the columns it can aggregate \
                         ([{}])",
                        columns.join(", ")
                    ));
                }
            },
        };
        let output = match input {
            None => OutputType::Scalar(DataType::Int64),
            Some(t) => function.output_type(t).map_err(|expected| {
                format!(
                    "{at}: function `{}` cannot take column `{}` of type {t}; it takes {expected}",
                    function.name(),
                    column.as_deref().unwrap_or_default()
                )
            })?,
        };
        Ok(Aggregation {
            name: spec.name.clone(),
            function,
            column,
            input,
            window,
            output,
        })
    }

    /// An empty state of this aggregation.
    pub fn new_state(&self) -> State {
        State::new(
            self.function,
            matches!(self.input, Some(DataType::Int32 | DataType::Int64)),
        )
    }

    /// The value at `t` by the definition, straight from rows `(event_ts, created_ts, value)`
    /// in any order: the rows in the window, folded into one state. (For `count` of rows, pass
    /// any non-null value per row.)
    pub fn value_at<'v>(
        &self,
        rows: impl IntoIterator<Item = (i64, i64, &'v FeatureValue)>,
        t: i64,
    ) -> Result<Output> {
        let mut state = self.new_state();
        for (event_ts, created_ts, value) in rows {
            if self.window.contains(t, event_ts) {
                state.update(value, event_ts, created_ts)?;
            }
        }
        state.evaluate()
    }
}
