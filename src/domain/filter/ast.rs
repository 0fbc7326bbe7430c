//! AST: the compiled expression tree that the parser builds and the evaluator walks.

use super::eval::Num;

/// The message fields an expression may start from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Root {
    Data,
    Topic,
    Event,
    Seq,
    Priority,
    Key,
}

/// A literal, pre-built at compile time so evaluation only borrows it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Lit {
    Null,
    Bool(bool),
    Num(Num),
    Str(String),
}

/// One step of a field path. Literal indexes are resolved at compile time;
/// only computed indexes (`data.items[data.i]`) stay as expressions.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Seg {
    Key(String),
    Index(i64),
    Dyn(Expr),
}

/// Binary relations; `in` shares their precedence level, as in CEL.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
}

/// The string predicates callable as methods (`s.startsWith("x")`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum StrFn {
    StartsWith,
    EndsWith,
    Contains,
}

/// Compiled expression tree.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expr {
    Lit(Lit),
    Root(Root),
    /// `base.seg1[seg2]...`; a path chain is one node with a segment vector so
    /// evaluation walks it in a loop instead of recursing per field.
    Path(Box<Expr>, Vec<Seg>),
    List(Vec<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    /// `&&` / `||` chains are flattened into one n-ary node.
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// `has(base.segs...)`.
    Has(Box<Expr>, Vec<Seg>),
    Size(Box<Expr>),
    StrFn(StrFn, Box<Expr>, Box<Expr>),
}
