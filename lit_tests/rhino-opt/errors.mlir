// Every failure is one line `rhino-opt: <stage>: <what>; <fix>` and a non-zero exit.

// RUN: not rhino-opt %s --pass-pipeline='builtin.module(rhino-inline,no-such-pass)' 2>&1 | filecheck %s --check-prefix=UNKNOWN
// UNKNOWN: rhino-opt: pipeline: unknown pass 'no-such-pass'; known rhino passes: {{.*}}rhino-inline
// UNKNOWN-NOT: Traceback

// RUN: not rhino-opt %s --pass-pipeline='builtin.module(rhino-inline{frobnicate=1})' 2>&1 | filecheck %s --check-prefix=OPTION
// OPTION: rhino-opt: pipeline: unknown option 'frobnicate' for pass 'rhino-inline'

// RUN: not rhino-opt %s --pass-pipeline='builtin.module(rhino-inline{legalize-chlo=maybe})' 2>&1 | filecheck %s --check-prefix=VALUE
// VALUE: rhino-opt: pipeline: bad value 'maybe' for option 'legalize-chlo' of pass 'rhino-inline'

// RUN: not rhino-opt %s --pass-pipeline='builtin.module(canonicalize{no-such-option=1})' 2>&1 | filecheck %s --check-prefix=UPSTREAM
// UPSTREAM: rhino-opt: pipeline: bad option for pass 'canonicalize': {{.*}}no such option

// RUN: not rhino-opt %s --pass-pipeline='builtin.module(func.func(rhino-inline))' 2>&1 | filecheck %s --check-prefix=NESTED
// NESTED: rhino-opt: pipeline: rhino pass 'rhino-inline' runs on the whole module; move it out of 'func.func(...)'

// RUN: not rhino-opt %s --pass-pipeline='builtin.module(cse' 2>&1 | filecheck %s --check-prefix=SYNTAX
// SYNTAX: rhino-opt: pipeline: malformed pipeline at column 19: expected ')'

// RUN: not rhino-opt %S/Inputs/dynamic.mlir 2>&1 | filecheck %s --check-prefix=DYNAMIC
// DYNAMIC: rhino-opt: dynamic shapes are not supported: %arg0 : tensor<?x4xf32>

// RUN: not rhino-opt %S/Inputs/malformed.mlir 2>&1 | filecheck %s --check-prefix=PARSE
// PARSE: rhino-opt: parse: {{.*}}malformed.mlir:3:28: expected SSA operand; fix the input
// PARSE-NOT: Traceback

// RUN: not rhino-opt %S/Inputs/no-such-file.mlir 2>&1 | filecheck %s --check-prefix=MISSING
// MISSING: rhino-opt: input: cannot read '{{.*}}no-such-file.mlir': No such file or directory

// RUN: not rhino-opt %S/Inputs/malformed.mlir --debug 2>&1 | filecheck %s --check-prefix=DEBUG
// DEBUG: Traceback
// DEBUG: rhino-opt: parse:

func.func @main(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  return %arg0 : tensor<4xf32>
}
