// 4 devices on a 2x2 mesh (device = 2*x + y): every collective kind, each result a
// resharding of an input, so numpy can state the global value (see test_launch.py).
module @collectives attributes {mhlo.num_partitions = 4 : i32, mhlo.num_replicas = 1 : i32} {
  sdy.mesh @mesh = <["x"=2, "y"=2]>
  func.func public @main(
      %a: tensor<4x4xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>, rhino.global_type = tensor<8x8xf32>},
      %b: tensor<8x4xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"y"}]>, rhino.global_type = tensor<8x8xf32>})
      -> (tensor<4x8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>, rhino.global_type = tensor<8x8xf32>},
          tensor<8x4xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"y"}]>, rhino.global_type = tensor<8x8xf32>},
          tensor<4x4xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {}]>, rhino.global_type = tensor<4x4xf32>},
          tensor<2x4xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>, rhino.global_type = tensor<4x8xf32>},
          tensor<4x8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"y"}, {}]>, rhino.global_type = tensor<8x8xf32>},
          tensor<8x4xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"y"}]>, rhino.global_type = tensor<8x8xf32>},
          tensor<4x4xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>, rhino.global_type = tensor<8x8xf32>},
          tensor<1xi32> {sdy.sharding = #sdy.sharding<@mesh, [{"x", "y"}]>, rhino.global_type = tensor<4xi32>}) {
    // gather the y-sharded columns back: [{"x"}, {"y"}] -> [{"x"}, {}]
    %ag1 = "stablehlo.all_gather"(%a) {all_gather_dim = 1 : i64, replica_groups = dense<[[0, 1], [2, 3]]> : tensor<2x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>, use_global_device_ids} : (tensor<4x4xf32>) -> tensor<4x8xf32>
    // gather rows: [{"x"}, {"y"}] -> [{}, {"y"}]
    %ag0 = "stablehlo.all_gather"(%a) {all_gather_dim = 0 : i64, replica_groups = dense<[[0, 2], [1, 3]]> : tensor<2x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 2, type = 1>, use_global_device_ids} : (tensor<4x4xf32>) -> tensor<8x4xf32>
    // sum of the four 4x4 blocks, everywhere
    %ar = "stablehlo.all_reduce"(%a) ({
    ^bb0(%p: tensor<f32>, %q: tensor<f32>):
      %s = stablehlo.add %p, %q : tensor<f32>
      stablehlo.return %s : tensor<f32>
    }) {replica_groups = dense<[[0, 1, 2, 3]]> : tensor<1x4xi64>, channel_handle = #stablehlo.channel_handle<handle = 3, type = 1>, use_global_device_ids} : (tensor<4x4xf32>) -> tensor<4x4xf32>
    // a[:4] + a[4:], rows scattered over x
    %rs = "stablehlo.reduce_scatter"(%a) ({
    ^bb0(%p: tensor<f32>, %q: tensor<f32>):
      %s = stablehlo.add %p, %q : tensor<f32>
      stablehlo.return %s : tensor<f32>
    }) {scatter_dimension = 0 : i64, replica_groups = dense<[[0, 2], [1, 3]]> : tensor<2x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 4, type = 1>, use_global_device_ids} : (tensor<4x4xf32>) -> tensor<2x4xf32>
    // columns-sharded -> rows-sharded: [{}, {"y"}] -> [{"y"}, {}], and back
    %t1 = "stablehlo.all_to_all"(%b) {split_dimension = 0 : i64, concat_dimension = 1 : i64, split_count = 2 : i64, replica_groups = dense<[[0, 1], [2, 3]]> : tensor<2x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 5, type = 1>} : (tensor<8x4xf32>) -> tensor<4x8xf32>
    %t2 = "stablehlo.all_to_all"(%t1) {split_dimension = 1 : i64, concat_dimension = 0 : i64, split_count = 2 : i64, replica_groups = dense<[[0, 1], [2, 3]]> : tensor<2x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 6, type = 1>} : (tensor<4x8xf32>) -> tensor<8x4xf32>
    // swap the column blocks: device (x, y) receives block (x, 1 - y)
    %cp = "stablehlo.collective_permute"(%a) {source_target_pairs = dense<[[0, 1], [1, 0], [2, 3], [3, 2]]> : tensor<4x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 7, type = 1>} : (tensor<4x4xf32>) -> tensor<4x4xf32>
    %pid = stablehlo.partition_id : tensor<ui32>
    %pi = stablehlo.convert %pid : (tensor<ui32>) -> tensor<i32>
    %pr = stablehlo.reshape %pi : (tensor<i32>) -> tensor<1xi32>
    return %ag1, %ag0, %ar, %rs, %t1, %t2, %cp, %pr : tensor<4x8xf32>, tensor<8x4xf32>, tensor<4x4xf32>, tensor<2x4xf32>, tensor<4x8xf32>, tensor<8x4xf32>, tensor<4x4xf32>, tensor<1xi32>
  }
}
