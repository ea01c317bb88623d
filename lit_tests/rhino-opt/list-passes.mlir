// RUN: rhino-opt --list-passes | filecheck %s
// CHECK-DAG: rhino-annotate-cost {{.*}}rhino.flops
// CHECK-DAG: rhino-inline {{.*}}Inline private functions
// CHECK-DAG: legalize-chlo: bool = True
// CHECK-DAG: rhino-strip-sharding {{.*}}sdy
