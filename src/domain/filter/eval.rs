//! Evaluator: walks the compiled AST against a `MessageView` using only borrowed values, so it never allocates.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use super::MessageView;
use super::ast::{CmpOp, Expr, Lit, Root, Seg, StrFn};

/// A number in its most exact representation; JSON numbers may be `i64`,
/// `u64` (above `i64::MAX`) or `f64`, and all three must compare correctly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Num {
    I(i64),
    U(u64),
    F(f64),
}

impl Num {
    fn from_json(n: &Number) -> Num {
        if let Some(i) = n.as_i64() {
            Num::I(i)
        } else if let Some(u) = n.as_u64() {
            Num::U(u)
        } else {
            Num::F(n.as_f64().unwrap_or(f64::NAN))
        }
    }

    /// Negation that never overflows: `-i64::MIN` becomes `U(2^63)` and
    /// `-U(2^63)` folds back to `i64::MIN`.
    pub(super) fn neg(self) -> Num {
        match self {
            Num::I(i) => i.checked_neg().map_or(Num::U(1 << 63), Num::I),
            Num::U(u) => i64::try_from(-i128::from(u)).map_or(Num::F(-(u as f64)), Num::I),
            Num::F(f) => Num::F(-f),
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Num::I(i) => i as f64,
            Num::U(u) => u as f64,
            Num::F(f) => f,
        }
    }

    /// Integral values (including integral floats) as `i128`, so that
    /// `1 == 1.0` holds and large integers compare without f64 rounding.
    fn as_exact(self) -> Option<i128> {
        match self {
            Num::I(i) => Some(i.into()),
            Num::U(u) => Some(u.into()),
            Num::F(f) if f.fract() == 0.0 && f.abs() < 1e38 => Some(f as i128),
            Num::F(_) => None,
        }
    }

    fn cmp(self, other: Num) -> Option<Ordering> {
        match (self.as_exact(), other.as_exact()) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => self.as_f64().partial_cmp(&other.as_f64()),
        }
    }

    fn as_index(self) -> Option<usize> {
        match self {
            Num::I(i) => usize::try_from(i).ok(),
            Num::U(u) => usize::try_from(u).ok(),
            Num::F(_) => None,
        }
    }
}

/// Runtime value: borrows from either the payload or the compiled AST.
/// `Absent` covers both missing fields and type errors (e.g. `-"x"`).
#[derive(Debug, Clone, Copy)]
pub(super) enum Val<'a> {
    Absent,
    Null,
    Bool(bool),
    Num(Num),
    Str(&'a str),
    Arr(&'a [Value]),
    /// A list literal; elements are evaluated lazily, on access.
    List(&'a [Expr]),
    Obj(&'a Map<String, Value>),
}

fn json(v: &Value) -> Val<'_> {
    match v {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => Val::Num(Num::from_json(n)),
        Value::String(s) => Val::Str(s),
        Value::Array(a) => Val::Arr(a),
        Value::Object(o) => Val::Obj(o),
    }
}

fn lit(l: &Lit) -> Val<'_> {
    match l {
        Lit::Null => Val::Null,
        Lit::Bool(b) => Val::Bool(*b),
        Lit::Num(n) => Val::Num(*n),
        Lit::Str(s) => Val::Str(s),
    }
}

/// Top-level truthiness: only boolean `true` counts.
pub(super) fn is_true(v: Val<'_>) -> bool {
    matches!(v, Val::Bool(true))
}

/// Evaluates `e`. Recursion depth is bounded by the parser's `MAX_DEPTH`.
pub(super) fn eval<'a>(e: &'a Expr, m: &MessageView<'a>) -> Val<'a> {
    match e {
        Expr::Lit(l) => lit(l),
        Expr::Root(Root::Data) => json(m.data),
        Expr::Root(Root::Topic) => Val::Str(m.topic),
        Expr::Root(Root::Event) => Val::Str(m.event),
        Expr::Root(Root::Seq) => Val::Num(Num::I(m.seq)),
        Expr::Root(Root::Priority) => Val::Num(Num::I(i64::from(m.priority))),
        Expr::Root(Root::Key) => m.key.map_or(Val::Null, Val::Str),
        Expr::Path(base, segs) => walk(eval(base, m), segs, m),
        Expr::List(items) => Val::List(items),
        Expr::Not(x) => match eval(x, m) {
            Val::Bool(b) => Val::Bool(!b),
            _ => Val::Absent,
        },
        Expr::Neg(x) => match eval(x, m) {
            Val::Num(n) => Val::Num(n.neg()),
            _ => Val::Absent,
        },
        // `all`/`any` stop at the first decisive operand: short-circuit.
        Expr::And(xs) => Val::Bool(xs.iter().all(|x| is_true(eval(x, m)))),
        Expr::Or(xs) => Val::Bool(xs.iter().any(|x| is_true(eval(x, m)))),
        Expr::Cmp(op, a, b) => Val::Bool(compare(*op, eval(a, m), eval(b, m), m)),
        Expr::Has(base, segs) => Val::Bool(!matches!(walk(eval(base, m), segs, m), Val::Absent)),
        Expr::Size(x) => size(eval(x, m)),
        Expr::StrFn(f, recv, arg) => Val::Bool(match (eval(recv, m), eval(arg, m)) {
            (Val::Str(s), Val::Str(p)) => match f {
                StrFn::StartsWith => s.starts_with(p),
                StrFn::EndsWith => s.ends_with(p),
                StrFn::Contains => s.contains(p),
            },
            _ => false,
        }),
    }
}

fn walk<'a>(mut cur: Val<'a>, segs: &'a [Seg], m: &MessageView<'a>) -> Val<'a> {
    for seg in segs {
        cur = match seg {
            Seg::Key(k) => key(cur, k),
            Seg::Index(i) => usize::try_from(*i).map_or(Val::Absent, |i| item(cur, i, m)),
            Seg::Dyn(e) => match eval(e, m) {
                Val::Str(k) => key(cur, k),
                Val::Num(n) => n.as_index().map_or(Val::Absent, |i| item(cur, i, m)),
                _ => Val::Absent,
            },
        };
        if let Val::Absent = cur {
            break;
        }
    }
    cur
}

fn key<'a>(cur: Val<'a>, k: &str) -> Val<'a> {
    match cur {
        Val::Obj(o) => o.get(k).map_or(Val::Absent, json),
        _ => Val::Absent,
    }
}

/// Element `i` of a JSON array or list literal; anything else is absent.
fn item<'a>(seq: Val<'a>, i: usize, m: &MessageView<'a>) -> Val<'a> {
    match seq {
        Val::Arr(a) => a.get(i).map_or(Val::Absent, json),
        Val::List(l) => l.get(i).map_or(Val::Absent, |e| eval(e, m)),
        _ => Val::Absent,
    }
}

fn len(v: Val<'_>) -> Option<usize> {
    match v {
        Val::Str(s) => Some(s.chars().count()),
        Val::Arr(a) => Some(a.len()),
        Val::List(l) => Some(l.len()),
        Val::Obj(o) => Some(o.len()),
        _ => None,
    }
}

fn size(v: Val<'_>) -> Val<'_> {
    len(v)
        .and_then(|n| i64::try_from(n).ok())
        .map_or(Val::Absent, |n| Val::Num(Num::I(n)))
}

fn compare<'a>(op: CmpOp, a: Val<'a>, b: Val<'a>, m: &MessageView<'a>) -> bool {
    use Ordering::{Equal, Greater, Less};
    match op {
        // `None` (something absent) makes both `==` and `!=` false.
        CmpOp::Eq => eq(a, b, m) == Some(true),
        CmpOp::Ne => eq(a, b, m) == Some(false),
        CmpOp::Lt => order(a, b) == Some(Less),
        CmpOp::Le => matches!(order(a, b), Some(Less | Equal)),
        CmpOp::Gt => order(a, b) == Some(Greater),
        CmpOp::Ge => matches!(order(a, b), Some(Greater | Equal)),
        CmpOp::In => contains(b, a, m),
    }
}

/// Ordering exists only between two numbers or two strings (bytewise).
fn order(a: Val<'_>, b: Val<'_>) -> Option<Ordering> {
    match (a, b) {
        (Val::Num(x), Val::Num(y)) => x.cmp(y),
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Structural equality; `None` when either side is (or contains) an absent value.
fn eq<'a>(a: Val<'a>, b: Val<'a>, m: &MessageView<'a>) -> Option<bool> {
    match (a, b) {
        (Val::Absent, _) | (_, Val::Absent) => None,
        (Val::Null, Val::Null) => Some(true),
        (Val::Bool(x), Val::Bool(y)) => Some(x == y),
        (Val::Num(x), Val::Num(y)) => Some(x.cmp(y) == Some(Ordering::Equal)),
        (Val::Str(x), Val::Str(y)) => Some(x == y),
        (Val::Obj(x), Val::Obj(y)) => Some(
            x.len() == y.len()
                && x.iter().all(|(k, xv)| {
                    y.get(k)
                        .is_some_and(|yv| eq(json(xv), json(yv), m) == Some(true))
                }),
        ),
        (Val::Arr(_) | Val::List(_), Val::Arr(_) | Val::List(_)) => {
            let n = len(a).unwrap_or(0);
            if n != len(b).unwrap_or(0) {
                return Some(false);
            }
            for i in 0..n {
                match eq(item(a, i, m), item(b, i, m), m) {
                    Some(true) => {}
                    other => return other,
                }
            }
            Some(true)
        }
        _ => Some(false),
    }
}

/// `needle in hay`: element membership for lists, key membership for objects.
fn contains<'a>(hay: Val<'a>, needle: Val<'a>, m: &MessageView<'a>) -> bool {
    match hay {
        _ if matches!(needle, Val::Absent) => false,
        Val::Arr(_) | Val::List(_) => {
            (0..len(hay).unwrap_or(0)).any(|i| eq(needle, item(hay, i, m), m) == Some(true))
        }
        Val::Obj(o) => matches!(needle, Val::Str(k) if o.contains_key(k)),
        _ => false,
    }
}
