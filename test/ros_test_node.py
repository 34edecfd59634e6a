"""The test side of a ROS graph: a real rclpy node with its own executor, and the few things
every ROS test does with it (spin until something happened, call a service, set a parameter)."""
import time


class TestNode:
    __test__ = False  # a helper, not a test class

    def __init__(self, context, name: str):
        import rclpy

        self.node = rclpy.create_node(name, context=context)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._parameter_clients = {}

    def spin_until(self, condition, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.01)
        return bool(condition())

    def spin_for(self, seconds: float) -> None:
        self.spin_until(lambda: False, seconds)

    def call(self, client, request, timeout: float = 10.0):
        assert client.wait_for_service(timeout_sec=timeout), f"{client.srv_name} never appeared"
        future = client.call_async(request)
        assert self.spin_until(future.done, timeout), f"{client.srv_name} did not answer"
        return future.result()

    def set_parameter(self, node_name: str, name: str, value):
        """Through the standard parameter service (what rqt_reconfigure uses); the SetParametersResult."""
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        if node_name not in self._parameter_clients:
            self._parameter_clients[node_name] = self.node.create_client(SetParameters,
                                                                        f"/{node_name}/set_parameters")
        request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        return self.call(self._parameter_clients[node_name], request).results[0]

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def stop_process(proc, sig=None, timeout: float = 10.0):
    """Stop a node process (and never leave it behind): its return code, or None if it had to be
    killed after `timeout` seconds."""
    import signal
    import subprocess

    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(sig if sig is not None else signal.SIGINT)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None
