"""The per-stage candidate table lines its columns up whatever the candidate names."""
from vla_edge.quant.report import stage_table


def _row(name):
    return {'name': name, 'latency_ms': 1.234, 'latency_ratio': 0.8, 'drift_mean': 0.01,
            'drift_final': 0.02, 'action_error_open_loop': 0.003, 'success_rate': 0.97}


def test_columns_line_up_with_long_candidate_names():
    table = stage_table({'action_expert': [_row('fp32'),
                                           _row('int8_dynamic_matmul-gemm_excl1_keep-tail0.25')],
                         'backbone': [{'name': 'int4_weights', 'error': 'no kernel'}]})
    header, *rows = table.splitlines()
    column = header.index('lat/call ms')
    measured = [r for r in rows if 'build failed' not in r]
    assert len(measured) == 2
    # every latency figure ends where its header ends
    end = column + len('lat/call ms')
    assert all(r[end - 5:end] == '1.234' for r in measured)
    assert all('build failed: no kernel' in r for r in rows if r not in measured)
