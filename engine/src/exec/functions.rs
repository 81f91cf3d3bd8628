//! Scalar functions Laminar adds to DataFusion's set, so common SQL runs unchanged.

use std::any::Any;

use arrow::compute::kernels::numeric::rem;
use arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// `MOD(a, b)`: the remainder of `a / b`, as `a % b` (the Nexmark suite's q2 uses it).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Mod {
    signature: Signature,
}

impl ScalarUDFImpl for Mod {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        "mod"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args.first().cloned().unwrap_or(DataType::Int64))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (Some(a), Some(b)) = (arrays.first(), arrays.get(1)) else {
            return datafusion::common::exec_err!("mod takes two arguments");
        };
        let result = rem(a, b)?;
        if args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)))
            && rows == 1
        {
            return Ok(ColumnarValue::Scalar(
                datafusion::common::ScalarValue::try_from_array(&result, 0)?,
            ));
        }
        Ok(ColumnarValue::Array(result))
    }
}

/// Every function Laminar registers in a session.
pub fn laminar_functions() -> Vec<ScalarUDF> {
    let mut functions = vec![ScalarUDF::from(Mod {
        signature: Signature::uniform(
            2,
            vec![DataType::Int64, DataType::Float64],
            Volatility::Immutable,
        ),
    })];
    functions.extend(super::flink_functions::flink_functions());
    functions
}
