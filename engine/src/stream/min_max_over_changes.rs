//! `min` and `max` over changes: a group's values as a multiset, so that any row can be taken
//! back (DataFusion's own retracting `min`/`max` assume the oldest row goes first, as in a
//! sliding window).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::Accumulator;

/// A value, ordered as DataFusion compares two values of one type.
#[derive(Debug, Clone, PartialEq)]
struct Ordered(ScalarValue);

impl Eq for Ordered {}

impl PartialOrd for Ordered {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ordered {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.partial_cmp(&other.0).unwrap_or(Ordering::Equal)
    }
}

/// The accumulator.
#[derive(Debug)]
pub struct MinMaxOverChanges {
    data_type: DataType,
    max: bool,
    /// Each non-NULL value and how many rows hold it.
    values: BTreeMap<Ordered, i64>,
}

impl MinMaxOverChanges {
    pub fn new(data_type: DataType, max: bool) -> Self {
        MinMaxOverChanges {
            data_type,
            max,
            values: BTreeMap::new(),
        }
    }

    /// Count `value` `by` more (or fewer) times.
    fn count(&mut self, value: ScalarValue, by: i64) {
        match self.values.entry(Ordered(value)) {
            Entry::Occupied(mut held) => {
                *held.get_mut() += by;
                if *held.get() <= 0 {
                    held.remove();
                }
            }
            Entry::Vacant(new) if by > 0 => {
                new.insert(by);
            }
            // Taking back a value never counted: nothing to do.
            Entry::Vacant(_) => {}
        }
    }

    fn count_all(&mut self, values: &ArrayRef, by: i64) -> Result<()> {
        for i in 0..values.len() {
            if values.is_valid(i) {
                self.count(ScalarValue::try_from_array(values, i)?, by);
            }
        }
        Ok(())
    }
}

impl Accumulator for MinMaxOverChanges {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.count_all(&values[0], 1)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.count_all(&values[0], -1)
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let extreme = if self.max {
            self.values.keys().next_back()
        } else {
            self.values.keys().next()
        };
        match extreme {
            Some(value) => Ok(value.0.clone()),
            None => ScalarValue::try_from(&self.data_type),
        }
    }

    fn size(&self) -> usize {
        size_of_val(self)
            + self
                .values
                .keys()
                .map(|v| v.0.size() + size_of::<i64>())
                .sum::<usize>()
    }

    /// The multiset as two lists: the values, and how many rows hold each.
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values: Vec<ScalarValue> = self.values.keys().map(|v| v.0.clone()).collect();
        let counts: Vec<ScalarValue> = self
            .values
            .values()
            .map(|n| ScalarValue::Int64(Some(*n)))
            .collect();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&values, &self.data_type)),
            ScalarValue::List(ScalarValue::new_list_nullable(&counts, &DataType::Int64)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (values, counts) = (states[0].as_list::<i32>(), states[1].as_list::<i32>());
        for row in 0..values.len() {
            let (row_values, row_counts) = (values.value(row), counts.value(row));
            let row_counts = row_counts.as_primitive::<Int64Type>();
            for i in 0..row_values.len() {
                let value = ScalarValue::try_from_array(&row_values, i)?;
                self.count(value, row_counts.value(i));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use std::sync::Arc;

    fn column(values: &[i64]) -> Vec<ArrayRef> {
        vec![Arc::new(Int64Array::from(values.to_vec()))]
    }

    #[test]
    fn any_row_can_be_taken_back_and_the_state_round_trips() {
        let mut max = MinMaxOverChanges::new(DataType::Int64, true);
        max.update_batch(&column(&[3, 9, 9, 5])).unwrap();
        max.retract_batch(&column(&[9])).unwrap();
        assert_eq!(
            max.evaluate().unwrap(),
            ScalarValue::Int64(Some(9)),
            "one 9 left"
        );
        max.retract_batch(&column(&[9, 3])).unwrap();
        assert_eq!(max.evaluate().unwrap(), ScalarValue::Int64(Some(5)));

        let state: Vec<ArrayRef> = max
            .state()
            .unwrap()
            .iter()
            .map(|s| s.to_array().unwrap())
            .collect();
        let mut min = MinMaxOverChanges::new(DataType::Int64, false);
        min.merge_batch(&state).unwrap();
        min.update_batch(&column(&[7])).unwrap();
        assert_eq!(min.evaluate().unwrap(), ScalarValue::Int64(Some(5)));
        min.retract_batch(&column(&[5, 7])).unwrap();
        assert_eq!(min.evaluate().unwrap(), ScalarValue::Int64(None), "empty");
    }
}
