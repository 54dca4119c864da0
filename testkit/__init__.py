"""Test infrastructure, not part of agentrun: what tests/ and bench/ start around the code under test.

    cluster           a throwaway Kubernetes control plane (etcd, kube-apiserver, controllers, scheduler,
                      kwok) from the binaries hack/control-plane/build.sh caches
    kwok-stages.yaml  the pod lifecycles kwok plays on its fake nodes
    operator_process  `agentrun operator` as a child process against such a cluster, and its CRDs
    kubelet           a process kubelet: runs the pods bound to its node as local processes
    vllm              real vLLM (the CPU build hack/vllm/build.sh caches) as a child process

Nothing under core/, trainer/, evaluator/ or operator/ imports it (tests/core/test_layers.py).
"""
