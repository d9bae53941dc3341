// The lossforge loss DSL (SPEC §2).
//
// Two entry rules: `file` (any number of `loss` definitions) and `expression`
// (a bare formula such as a DEAP prefix string, given its inputs by a preset).
//
// Every repetition is written as a loop, never as recursion, so that long sums,
// chains of unary minus or of `^` build flat parse trees; only brackets recurse,
// and the front end bounds their nesting before the parser runs.
//
// Newlines end statements. The token filter in compiler/parse.cpp drops the
// NL tokens that cannot end anything (inside brackets, after an operator or a
// comma, repeated), which keeps this grammar free of layout rules.
grammar LossDSL;

// Each alternative starts with its own token, so the parser never looks past one loss.
file       : (lossDef | NL | ';')* EOF ;
expression : NL* expr NL* EOF ;

lossDef    : LOSS name=IDENT '(' (inputDecl (',' inputDecl)*)? ')' NL*
             ( '=' expr | block ) ;
inputDecl  : PRED? name=IDENT ':' typeSpec ;
typeSpec   : kind=IDENT ('[' dim=(IDENT | NUMBER) ']')? ;

block      : '{' NL* (stmt (NL+ | ';' NL*))* expr (NL | ';')* '}' ;
stmt       : PARAM name=IDENT '=' signedNumber        # paramStmt
           | LET name=IDENT '=' expr                  # letStmt
           ;
signedNumber : MINUS? NUMBER ;

// Precedence, loosest first: + -, * /, unary -, ^ (right-associative), .field
expr       : term (op+=(PLUS | MINUS) term)* ;
term       : unary (op+=(STAR | SLASH) unary)* ;
unary      : MINUS* power ;
power      : postfix (CARET exponent)* ;
exponent   : MINUS* postfix ;
postfix    : primary (DOT field=IDENT)* ;
primary    : NUMBER                                   # number
           | fn=IDENT '(' (expr (',' expr)*)? ')'     # call
           | IDENT                                    # name
           | '(' expr ')'                             # parens
           ;

LOSS   : 'loss' ;
LET    : 'let' ;
PARAM  : 'param' ;
PRED   : 'pred' ;
PLUS   : '+' ;
MINUS  : '-' ;
STAR   : '*' ;
SLASH  : '/' ;
CARET  : '^' ;
DOT    : '.' ;
IDENT  : [a-zA-Z_] [a-zA-Z_0-9]* ;
// 2, 0.25, .5, 5., 1e-7, 1E+3, 1_000, 0x1F, 0x1.8p3; the front end converts and range-checks.
NUMBER : DIGITS ('.' DIGITS?)? EXPONENT?
       | '.' DIGITS EXPONENT?
       | '0' [xX] HEXDIGITS ('.' HEXDIGITS?)? ([pP] [+-]? DIGITS)?
       ;
fragment DIGITS    : [0-9] ('_'? [0-9])* ;
fragment HEXDIGITS : [0-9a-fA-F] ('_'? [0-9a-fA-F])* ;
fragment EXPONENT  : [eE] [+-]? DIGITS ;
NL      : '\r'? '\n' ;
WS      : [ \t\f]+ -> skip ;
COMMENT : '#' ~[\r\n]* -> channel(HIDDEN) ;
// Anything else is one error token, so the parser reports it with its location.
ERROR_CHAR : . ;
