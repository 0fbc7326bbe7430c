//! Parser: recursive descent from tokens to the compiled AST (`Expr`), enforcing `MAX_DEPTH`.

use super::ast::{CmpOp, Expr, Lit, Root, Seg, StrFn};
use super::eval::Num;
use super::lexer::{Tok, Token, tokenize};
use super::{FilterError, MAX_DEPTH};

type R<T> = Result<T, FilterError>;

fn err(position: usize, message: impl Into<String>) -> FilterError {
    FilterError {
        position,
        message: message.into(),
    }
}

/// Parses a whole expression; trailing tokens are an error.
pub(super) fn parse(src: &str) -> R<Expr> {
    let toks = tokenize(src)?;
    let mut p = Parser {
        toks,
        i: 0,
        depth: 0,
    };
    if p.peek().tok == Tok::Eof {
        return Err(err(0, "empty expression"));
    }
    let e = p.or()?;
    p.expect(&Tok::Eof)?;
    Ok(e)
}

struct Parser {
    /// Never empty: the lexer always appends `Tok::Eof`.
    toks: Vec<Token>,
    i: usize,
    depth: usize,
}

fn relop(t: &Tok) -> Option<CmpOp> {
    Some(match t {
        Tok::Eq => CmpOp::Eq,
        Tok::Ne => CmpOp::Ne,
        Tok::Lt => CmpOp::Lt,
        Tok::Le => CmpOp::Le,
        Tok::Gt => CmpOp::Gt,
        Tok::Ge => CmpOp::Ge,
        Tok::In => CmpOp::In,
        _ => return None,
    })
}

/// Appends a segment, merging into an existing path so `a.b.c` is one node.
fn push_seg(e: Expr, seg: Seg) -> Expr {
    match e {
        Expr::Path(base, mut segs) => {
            segs.push(seg);
            Expr::Path(base, segs)
        }
        other => Expr::Path(Box::new(other), vec![seg]),
    }
}

fn index_seg(e: Expr) -> Seg {
    match e {
        Expr::Lit(Lit::Str(s)) => Seg::Key(s),
        Expr::Lit(Lit::Num(Num::I(i))) => Seg::Index(i),
        other => Seg::Dyn(other),
    }
}

fn check_arity(name: &str, pos: usize, want: usize, got: usize) -> R<()> {
    if want == got {
        return Ok(());
    }
    let plural = if want == 1 { "argument" } else { "arguments" };
    let verb = if got == 1 { "was" } else { "were" };
    Err(err(
        pos,
        format!("{name}() takes {want} {plural} but {got} {verb} given"),
    ))
}

impl Parser {
    fn peek(&self) -> &Token {
        // `min` keeps this panic-free even if we somehow advanced past Eof.
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if &self.peek().tok == t {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: &Tok) -> R<()> {
        if self.eat(t) {
            return Ok(());
        }
        let want = if *t == Tok::Eof {
            "end of input".to_string()
        } else {
            format!("'{}'", t.symbol())
        };
        let found = self.peek();
        Err(err(
            found.pos,
            format!("expected {want} but found {}", found.tok.describe()),
        ))
    }

    /// Every construct that deepens the AST (and thus evaluation recursion)
    /// goes through here, which bounds both parser and evaluator stack use.
    fn enter(&mut self, pos: usize) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(pos, format!("nesting deeper than {MAX_DEPTH}")));
        }
        Ok(())
    }

    fn leave(&mut self, levels: usize) {
        self.depth -= levels;
    }

    fn or(&mut self) -> R<Expr> {
        self.chain(&Tok::Or, Self::and, Expr::Or)
    }

    fn and(&mut self) -> R<Expr> {
        self.chain(&Tok::And, Self::rel, Expr::And)
    }

    /// Parses `operand (op operand)*` into one flat n-ary node.
    fn chain(
        &mut self,
        op: &Tok,
        operand: fn(&mut Self) -> R<Expr>,
        build: fn(Vec<Expr>) -> Expr,
    ) -> R<Expr> {
        let first = operand(self)?;
        if &self.peek().tok != op {
            return Ok(first);
        }
        self.enter(self.peek().pos)?;
        let mut items = vec![first];
        while self.eat(op) {
            items.push(operand(self)?);
        }
        self.leave(1);
        Ok(build(items))
    }

    /// Relations are left-associative (`a < b == true`); each link nests the
    /// tree one level deeper, so each counts toward the depth limit.
    fn rel(&mut self) -> R<Expr> {
        let mut lhs = self.unary()?;
        let mut links = 0;
        while let Some(op) = relop(&self.peek().tok) {
            let pos = self.bump().pos;
            self.enter(pos)?;
            links += 1;
            let rhs = self.unary()?;
            lhs = Expr::Cmp(op, Box::new(lhs), Box::new(rhs));
        }
        self.leave(links);
        Ok(lhs)
    }

    fn unary(&mut self) -> R<Expr> {
        let tok = self.peek().tok.clone();
        if tok != Tok::Not && tok != Tok::Minus {
            return self.postfix();
        }
        let pos = self.bump().pos;
        self.enter(pos)?;
        let inner = self.unary()?;
        self.leave(1);
        Ok(match (tok, inner) {
            // Fold `-<number>` so negative literals are plain constants.
            (Tok::Minus, Expr::Lit(Lit::Num(n))) => Expr::Lit(Lit::Num(n.neg())),
            (Tok::Minus, e) => Expr::Neg(Box::new(e)),
            (_, e) => Expr::Not(Box::new(e)),
        })
    }

    fn postfix(&mut self) -> R<Expr> {
        let mut e = self.primary()?;
        loop {
            match self.peek().tok {
                Tok::Dot => {
                    self.bump();
                    let t = self.bump();
                    let name = match (&t.tok, t.tok.keyword_text()) {
                        (Tok::Ident(s), _) => s.clone(),
                        (_, Some(k)) => k.to_string(),
                        _ => {
                            return Err(err(
                                t.pos,
                                format!(
                                    "expected field name after '.' but found {}",
                                    t.tok.describe()
                                ),
                            ));
                        }
                    };
                    e = if self.peek().tok == Tok::LParen {
                        self.method(e, &name, t.pos)?
                    } else {
                        push_seg(e, Seg::Key(name))
                    };
                }
                Tok::LBracket => {
                    let pos = self.bump().pos;
                    self.enter(pos)?;
                    let idx = self.or()?;
                    self.expect(&Tok::RBracket)?;
                    self.leave(1);
                    e = push_seg(e, index_seg(idx));
                }
                _ => return Ok(e),
            }
        }
    }

    fn method(&mut self, recv: Expr, name: &str, pos: usize) -> R<Expr> {
        let f = match name {
            "startsWith" => Some(StrFn::StartsWith),
            "endsWith" => Some(StrFn::EndsWith),
            "contains" => Some(StrFn::Contains),
            "size" => None,
            _ => return Err(err(pos, format!("unknown function '{name}'"))),
        };
        let mut args = self.args()?;
        match f {
            Some(f) => {
                check_arity(name, pos, 1, args.len())?;
                let arg = args.pop().unwrap_or(Expr::Lit(Lit::Null));
                Ok(Expr::StrFn(f, Box::new(recv), Box::new(arg)))
            }
            None => {
                check_arity(name, pos, 0, args.len())?;
                Ok(Expr::Size(Box::new(recv)))
            }
        }
    }

    /// Parses `( expr, ... )` after a function name.
    fn args(&mut self) -> R<Vec<Expr>> {
        self.delimited(&Tok::LParen, &Tok::RParen)
    }

    /// Comma-separated expressions between `open` and `close`; a trailing
    /// comma is accepted (`["a", "b",]`) as in CEL.
    fn delimited(&mut self, open: &Tok, close: &Tok) -> R<Vec<Expr>> {
        let pos = self.peek().pos;
        self.expect(open)?;
        self.enter(pos)?;
        let mut items = Vec::new();
        while !self.eat(close) {
            items.push(self.or()?);
            if self.eat(close) {
                break;
            }
            if !self.eat(&Tok::Comma) {
                let t = self.peek();
                return Err(err(
                    t.pos,
                    format!(
                        "expected ',' or '{}' but found {}",
                        close.symbol(),
                        t.tok.describe()
                    ),
                ));
            }
        }
        self.leave(1);
        Ok(items)
    }

    fn primary(&mut self) -> R<Expr> {
        let t = self.peek().clone();
        let lit = |l| Ok(Expr::Lit(l));
        match t.tok {
            Tok::LBracket => {
                return Ok(Expr::List(self.delimited(&Tok::LBracket, &Tok::RBracket)?));
            }
            Tok::LParen => {
                self.bump();
                self.enter(t.pos)?;
                let e = self.or()?;
                self.expect(&Tok::RParen)?;
                self.leave(1);
                return Ok(e);
            }
            _ => {}
        }
        self.bump();
        match t.tok {
            Tok::Int(u) => lit(Lit::Num(match i64::try_from(u) {
                Ok(i) => Num::I(i),
                Err(_) => Num::U(u),
            })),
            Tok::Float(f) => lit(Lit::Num(Num::F(f))),
            Tok::Str(s) => lit(Lit::Str(s)),
            Tok::True => lit(Lit::Bool(true)),
            Tok::False => lit(Lit::Bool(false)),
            Tok::Null => lit(Lit::Null),
            Tok::Ident(name) if self.peek().tok == Tok::LParen => self.call(&name, t.pos),
            Tok::Ident(name) => match name.as_str() {
                "data" => Ok(Expr::Root(Root::Data)),
                "topic" => Ok(Expr::Root(Root::Topic)),
                "event" => Ok(Expr::Root(Root::Event)),
                "seq" => Ok(Expr::Root(Root::Seq)),
                "priority" => Ok(Expr::Root(Root::Priority)),
                "key" => Ok(Expr::Root(Root::Key)),
                _ => Err(err(
                    t.pos,
                    format!(
                        "unknown identifier '{name}' (expected data, topic, event, seq, priority or key)"
                    ),
                )),
            },
            other => Err(err(
                t.pos,
                format!("expected expression but found {}", other.describe()),
            )),
        }
    }

    /// Global-style calls: `has(path)` and `size(x)`.
    fn call(&mut self, name: &str, pos: usize) -> R<Expr> {
        match name {
            "has" | "size" => {}
            "startsWith" | "endsWith" | "contains" => {
                return Err(err(
                    pos,
                    format!("{name}() must be called as a method, e.g. s.{name}(\"x\")"),
                ));
            }
            _ => return Err(err(pos, format!("unknown function '{name}'"))),
        }
        let arg_pos = self.toks.get(self.i + 1).map_or(pos, |t| t.pos);
        let mut args = self.args()?;
        check_arity(name, pos, 1, args.len())?;
        let arg = args.pop().unwrap_or(Expr::Lit(Lit::Null));
        if name == "size" {
            return Ok(Expr::Size(Box::new(arg)));
        }
        match arg {
            Expr::Path(base, segs) => Ok(Expr::Has(base, segs)),
            _ => Err(err(
                arg_pos,
                "has() argument must be a field selection, e.g. has(data.a.b)",
            )),
        }
    }
}
